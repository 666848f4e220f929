// Does not compile, on purpose: %install must show SwiftPM's error and keep the kernel usable.
public let broken: Int = "not a number"
