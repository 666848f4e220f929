/// A temperature that says how a notebook shows it, by the method alone: no conformance, no import.
public struct Reading {
    public var celsius: Double
    public init(celsius: Double) { self.celsius = celsius }

    public func jupyterMimeBundle() -> [String: String] {
        [
            "text/html": "<span style=\"color: \(celsius > 25 ? "red" : "blue")\">\(celsius) °C</span>",
            "text/markdown": "**\(celsius) °C**",
        ]
    }
}

/// A method of that name with another signature is not the protocol's: shown as plain text.
public struct Impostor {
    public init() {}
    public func jupyterMimeBundle() -> String { "not a bundle" }
}
