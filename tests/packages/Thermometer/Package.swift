// swift-tools-version:5.9
import PackageDescription

// A package that adopts the kernel's display protocol without depending on anything of the
// kernel's: it only declares the method (tests/test_display_protocol.py).
let package = Package(
    name: "Thermometer",
    products: [.library(name: "Thermometer", targets: ["Thermometer"])],
    targets: [.target(name: "Thermometer")]
)
