/// Say hello: the pure Swift package that the %install tests build.
public func greet(_ name: String) -> String { "Hello, \(name)!" }

public struct Tally {
    public private(set) var count = 0
    public init() {}
    public mutating func bump() -> Int {
        count += 1
        return count
    }
}
