// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "CMath",
    products: [.library(name: "CMathSwift", targets: ["CMathSwift"])],
    targets: [
        .target(name: "CMath"),
        .target(name: "CMathSwift", dependencies: ["CMath"]),
    ]
)
