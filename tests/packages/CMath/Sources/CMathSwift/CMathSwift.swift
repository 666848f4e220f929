import CMath

/// Add through the C target.
public func addInC(_ a: Int, _ b: Int) -> Int { Int(cmath_add(Int32(a), Int32(b))) }
