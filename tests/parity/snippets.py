"""The parity harness's Swift: snippets by chapter of the language guide, each a few cells.

Every snippet runs (a) as its cells, one after the other, in one kernel per chapter and (b)
concatenated with the chapter's other snippets into one program that swiftc builds; what each
prints must be the same. Names are unique within a chapter, because the program is one file.

A snippet that meets one of LLDB's REPL limits (README: Known limits) says so in ``limit``: the
limit's id and the text the kernel's error must contain. The swiftc program still builds and runs
it (so the code is checked to be valid Swift); the kernel must fail with that clear error instead
of printing. Such snippets come last in their chapter: a failed cell can leave LLDB's REPL worse
off for later cells (limits L6 and L8).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    """Cells that run one after the other; ``limit`` is (limit id, text of the kernel's error)."""

    name: str
    cells: tuple[str, ...]
    limit: tuple[str, str] | None = None


def s(name: str, *cells: str, limit: tuple[str, str] | None = None) -> Snippet:
    """Make a snippet of ``cells`` (each a string of Swift)."""
    return Snippet(name, tuple(cells), limit)


BASICS = [
    s("constants", "let maximumLogins = 10\nvar current = 0\ncurrent += 3\nprint(maximumLogins, current)"),
    s("inference", "let pi = 3.14159\nlet sum = 3 + 0.14159\nprint(type(of: pi), type(of: sum), pi == sum)"),
    s("tuples", 'let status = (404, "Not Found")\nlet (code, message) = status\nprint(code, message, status.0)'),
    s("named tuple", 'let ok = (statusCode: 200, description: "OK")\nprint(ok.statusCode, ok.description)'),
    s("optionals", 'let possible = "123"\nlet converted = Int(possible)\nprint(converted as Any, Int("x") as Any)'),
    s("optional binding", 'if let n = Int("42"), n > 40 { print("big", n) } else { print("small") }'),
    s("nil coalescing", "let maybe: Int? = nil\nprint(maybe ?? 7, (maybe.map { $0 * 2 }) ?? -1)"),
    s("integer bounds", "print(UInt8.min, UInt8.max, Int16.max, Int8(bitPattern: 0xFF))"),
    s("overflow ops", "let big = UInt8.max\nprint(big &+ 1, Int8.min &- 1, 5 &* 100 as UInt8)"),
    s("across cells", "var counter = 1", "counter *= 5", "print(counter)"),
    s("numeric literals", "print(0b1010, 0o17, 0x1F, 1_000_000, 1.25e2, 0xFp2)"),
]

CONTROL_FLOW = [
    s("for in", "var total = 0\nfor i in 1...5 { total += i }\nprint(total)"),
    s("stride", "print(Array(stride(from: 0, to: 10, by: 3)), Array(stride(from: 3, through: 0, by: -1)))"),
    s("while", "var w = 1\nwhile w < 100 { w *= 3 }\nprint(w)"),
    s("repeat", "var r = 10\nrepeat { r -= 4 } while r > 0\nprint(r)"),
    s(
        "switch ranges",
        'func size(_ n: Int) -> String {\n    switch n {\n    case ..<0: return "negative"\n    case 0: return "zero"\n'
        '    case 1...9: return "small"\n    default: return "large"\n    }\n}',
        "print(size(-3), size(0), size(5), size(50))",
    ),
    s(
        "switch tuples",
        'let point = (1, -1)\nswitch point {\ncase (0, 0): print("origin")\ncase (let x, let y) where x == -y: '
        'print("diagonal", x)\ndefault: print("elsewhere")\n}',
    ),
    s("labeled break", "outer: for i in 0..<5 {\n    for j in 0..<5 where i * j == 6 { print(i, j); break outer }\n}"),
    s(
        "guard",
        'func greet(_ name: String?) {\n    guard let name else { print("nobody"); return }\n    print("hi", name)\n}\ngreet(nil)\ngreet("Ann")',
    ),
    s(
        "dictionaries",
        'var ages = ["Ann": 31, "Bob": 25]\nages["Cy"] = 40\nfor (k, v) in ages.sorted(by: { $0.key < $1.key }) { print(k, v) }',
    ),
    s(
        "sets",
        "let a: Set = [1, 2, 3, 4]\nlet b: Set = [3, 4, 5]\nprint(a.intersection(b).sorted(), a.symmetricDifference(b).sorted())",
    ),
    s(
        "arrays",
        "var xs = [3, 1, 2]\nxs.append(contentsOf: [9, 0])\nxs.sort()\nprint(xs, xs.firstIndex(of: 9) ?? -1, xs.reversed().prefix(2))",
    ),
]

FUNCTIONS_AND_CLOSURES = [
    s(
        "labels and defaults",
        'func join(_ a: String, with b: String = "-", times: Int = 1) -> String {\n    String(repeating: a + b, count: times)\n}\nprint(join("x"), join("y", with: "+", times: 3))',
    ),
    s(
        "variadic",
        "func mean(_ values: Double...) -> Double { values.reduce(0, +) / Double(values.count) }\nprint(mean(1, 2, 3, 4))",
    ),
    s(
        "inout",
        "func swapped(_ a: inout Int, _ b: inout Int) { (a, b) = (b, a) }\nvar p = 1, q = 2\nswapped(&p, &q)\nprint(p, q)",
    ),
    s(
        "function types",
        "func add(_ a: Int, _ b: Int) -> Int { a + b }\nlet op: (Int, Int) -> Int = add\nprint(op(2, 3))",
    ),
    s(
        "nested functions",
        "func chooser(back: Bool) -> (Int) -> Int {\n    func up(_ v: Int) -> Int { v + 1 }\n    func down(_ v: Int) -> Int { v - 1 }\n    return back ? down : up\n}\nprint(chooser(back: true)(10), chooser(back: false)(10))",
    ),
    s(
        "trailing closures",
        'let names = ["Chris", "Alex", "Ewa", "Barry"]\nprint(names.sorted { $0 > $1 })\nprint(names.map { $0.count })',
    ),
    s(
        "capturing",
        "func makeIncrementer(by amount: Int) -> () -> Int {\n    var total = 0\n    return { total += amount; return total }\n}\nlet byTen = makeIncrementer(by: 10)",
        "_ = byTen()\nprint(byTen())",
    ),
    s(
        "escaping",
        'var handlers: [() -> Void] = []\nfunc later(_ h: @escaping () -> Void) { handlers.append(h) }\nlater { print("first") }\nlater { print("second") }',
        "handlers.forEach { $0() }",
    ),
    s(
        "autoclosure",
        'var queue = ["a", "b", "c"]\nfunc serve(_ next: @autoclosure () -> String) { print("now", next()) }\nserve(queue.remove(at: 0))\nprint(queue)',
    ),
    s(
        "higher order",
        "let nums = [1, 2, 3, 4, 5, 6]\nprint(nums.filter { $0 % 2 == 0 }.map { $0 * $0 }.reduce(0, +), nums.compactMap { $0 > 3 ? String($0) : nil })",
    ),
    s("recursion", "func fib(_ n: Int) -> Int { n < 2 ? n : fib(n - 1) + fib(n - 2) }", "print((0..<10).map(fib))"),
]

ENUMS = [
    s(
        "raw values",
        "enum Planet: Int { case mercury = 1, venus, earth }\nprint(Planet.earth.rawValue, Planet(rawValue: 2)!, Planet(rawValue: 9) == nil)",
    ),
    s(
        "case iterable",
        'enum Beverage: CaseIterable { case coffee, tea, juice }\nprint(Beverage.allCases.count, Beverage.allCases.map { "\\($0)" })',
    ),
    s(
        "associated values",
        "enum Barcode { case upc(Int, Int, Int, Int); case qr(String) }",
        'var code = Barcode.upc(8, 85909, 51226, 3)\ncode = .qr("ABCDEFG")\nswitch code {\ncase let .upc(a, b, c, d): print(a, b, c, d)\ncase .qr(let s): print("QR", s)\n}',
    ),
    s(
        "indirect",
        "indirect enum Expr { case num(Int); case add(Expr, Expr); case mul(Expr, Expr) }\n"
        "func eval(_ e: Expr) -> Int {\n    switch e {\n    case .num(let v): return v\n    case let .add(l, r): return eval(l) + eval(r)\n    case let .mul(l, r): return eval(l) * eval(r)\n    }\n}",
        "print(eval(.mul(.add(.num(5), .num(4)), .num(2))))",
    ),
    s(
        "methods on enums",
        "enum Switch { case on, off\n    mutating func toggle() { self = self == .on ? .off : .on }\n}\nvar light = Switch.off\nlight.toggle()\nprint(light)",
    ),
    s(
        "if case",
        'enum Load { case idle, busy(percent: Int) }\nlet load = Load.busy(percent: 70)\nif case .busy(let p) = load, p > 50 { print("high", p) }',
    ),
    s(
        "equatable synthesized",
        'enum Token: Equatable { case word(String), number(Int) }\nprint(Token.word("a") == .word("a"), Token.number(1) == .number(2))',
    ),
]

STRUCTS_AND_CLASSES = [
    s(
        "value semantics",
        "struct Resolution { var width = 0, height = 0 }\nvar hd = Resolution(width: 1920, height: 1080)\nvar cinema = hd\ncinema.width = 2048\nprint(hd.width, cinema.width)",
    ),
    s(
        "reference semantics",
        'class Mode { var name = "" }\nlet m1 = Mode()\nlet m2 = m1\nm2.name = "fast"\nprint(m1.name, m1 === m2)',
    ),
    s(
        "computed properties",
        "struct Rect { var w = 0.0, h = 0.0\n    var area: Double { w * h }\n    var square: Bool { get { w == h } }\n}\nprint(Rect(w: 2, h: 3).area, Rect(w: 2, h: 2).square)",
    ),
    s(
        "observers",
        'class Steps { var total = 0 { willSet { print("to", newValue) } didSet { print("added", total - oldValue) } } }\nlet steps = Steps()\nsteps.total = 5\nsteps.total = 12',
    ),
    s(
        "lazy",
        'class Importer { init() { print("import ran") } }\nclass Manager { lazy var importer = Importer(); var data: [String] = [] }\nlet manager = Manager()\nprint("made")',
        "_ = manager.importer\n_ = manager.importer",
    ),
    s(
        "inheritance",
        'class Vehicle { var speed = 0.0\n    var description: String { "at \\(speed)" }\n    func noise() -> String { "..." }\n}\nclass Train: Vehicle { override func noise() -> String { "choo" } }',
        "let t = Train()\nt.speed = 80\nprint(t.description, t.noise())",
    ),
    s(
        "initializers",
        'class Food { var name: String\n    init(name: String) { self.name = name }\n    convenience init() { self.init(name: "[Unnamed]") }\n}\nprint(Food().name, Food(name: "Bacon").name)',
    ),
    s(
        "failable init",
        'struct Animal { let species: String\n    init?(species: String) { if species.isEmpty { return nil }; self.species = species }\n}\nprint(Animal(species: "") == nil, Animal(species: "cat")!.species)',
    ),
    s(
        "deinit",
        'class Tracked { let id: Int\n    init(_ id: Int) { self.id = id }\n    deinit { print("deinit", id) }\n}\nvar tracked: Tracked? = Tracked(1)\ntracked = nil\nprint("after")',
    ),
    s(
        "subscripts",
        "struct Matrix { var grid: [Double]; let cols: Int\n    subscript(r: Int, c: Int) -> Double { get { grid[r * cols + c] } set { grid[r * cols + c] = newValue } }\n}\nvar mat = Matrix(grid: [0, 0, 0, 0], cols: 2)\nmat[1, 0] = 3.5\nprint(mat.grid)",
    ),
    s(
        "mutating and static",
        "struct Counter { static var made = 0; var n = 0\n    init() { Counter.made += 1 }\n    mutating func bump() { n += 1 }\n}\nvar c1 = Counter()\nc1.bump(); c1.bump()\n_ = Counter()\nprint(c1.n, Counter.made)",
    ),
    s(
        "weak references",
        'class Owner { var pet: Pet?; deinit { print("owner gone") } }\nclass Pet { weak var owner: Owner?; deinit { print("pet gone") } }\nvar o: Owner? = Owner()\nlet pet = Pet()\no!.pet = pet\npet.owner = o\no = nil\nprint(pet.owner == nil)',
    ),
    s(
        "struct across cells",
        "struct Point3 { var x = 0, y = 0, z = 0 }",
        "var p3 = Point3(x: 1)\np3.z = 9",
        "print(p3)",
    ),
]

PROTOCOLS_AND_EXTENSIONS = [
    s(
        "conformance in the type",
        "protocol Named { var fullName: String { get } }",
        'struct Person: Named { var fullName: String }\nprint(Person(fullName: "John Appleseed").fullName)',
    ),
    s(
        "extension members",
        "extension Double { var km: Double { self * 1_000.0 }; var cm: Double { self / 100.0 } }",
        "print(25.4.cm, 3.0.km)",
    ),
    s(
        "extension with nested enum",
        "extension Int { enum Sign { case negative, zero, positive }\n    var sign: Sign { self == 0 ? .zero : self > 0 ? .positive : .negative }\n}",
        "print(3.sign, (-2).sign, 0.sign)",
    ),
    s(
        "conformance in the same cell",
        'protocol Greets { func greet() -> String }\nstruct Dog {}\nextension Dog: Greets { func greet() -> String { "woof" } }',
        "print(Dog().greet())",
    ),
    s(
        "marker conformance across cells",
        "struct Box {}\nprotocol Marker {}",
        "extension Box: Marker {}",
        "print(Box() is Marker)",
    ),
    s(
        "protocol extensions",
        'protocol Shouter { var word: String { get } }\nextension Shouter { func shout() -> String { word.uppercased() + "!" } }\nstruct Cat: Shouter { let word = "meow" }',
        "print(Cat().shout())",
    ),
    s(
        "equatable and hashable",
        "struct Pair: Hashable { var a: Int; var b: Int }\nprint(Pair(a: 1, b: 2) == Pair(a: 1, b: 2), Set([Pair(a: 1, b: 1), Pair(a: 1, b: 1)]).count)",
    ),
    s(
        "comparable",
        "struct Version: Comparable { var major: Int\n    static func < (l: Version, r: Version) -> Bool { l.major < r.major }\n}\nprint([Version(major: 3), Version(major: 1)].sorted().map(\\.major), Version(major: 2) > Version(major: 1))",
    ),
    s(
        "custom string convertible",
        'struct Temp: CustomStringConvertible { var c: Double\n    var description: String { "\\(c)°C" }\n}\nprint(Temp(c: 21.5), [Temp(c: 0)])',
    ),
    s(
        "class-only protocol",
        "protocol Resettable: AnyObject { func reset() }\nclass Meter: Resettable { var v = 5; func reset() { v = 0 } }\nlet meter = Meter()\n(meter as Resettable).reset()\nprint(meter.v)",
    ),
    s(
        "witness in a later cell",
        "protocol Describable { func describe() -> String }",
        'extension Int: Describable { func describe() -> String { "int \\(self)" } }',
        "print(5.describe())",
    ),
    s(
        "library protocol in a later cell",
        "struct Celsius { var degrees: Double }",
        'extension Celsius: CustomStringConvertible {\n    var description: String { "\\(degrees)°C" }\n}',
        "print(Celsius(degrees: 21.5), [Celsius(degrees: 0)])",
    ),
]

GENERICS = [
    s(
        "generic function",
        'func swapTwo<T>(_ a: inout T, _ b: inout T) { let t = a; a = b; b = t }\nvar g1 = "a", g2 = "b"\nswapTwo(&g1, &g2)\nprint(g1, g2)',
    ),
    s(
        "generic stack",
        "struct Stack<Element> { var items: [Element] = []\n    mutating func push(_ e: Element) { items.append(e) }\n    mutating func pop() -> Element? { items.popLast() }\n}",
        'var stack = Stack<String>()\nstack.push("a"); stack.push("b")\nprint(stack.pop() ?? "-", stack.items)',
    ),
    s(
        "constraints",
        'func findIndex<T: Equatable>(of v: T, in xs: [T]) -> Int? { xs.firstIndex(of: v) }\nprint(findIndex(of: 3, in: [1, 2, 3]) ?? -1, findIndex(of: "z", in: ["a"]) ?? -1)',
    ),
    s(
        "associated types",
        "protocol Container { associatedtype Item; var count: Int { get }; subscript(i: Int) -> Item { get } }\nstruct Ints: Container { var xs = [4, 5]; var count: Int { xs.count }; subscript(i: Int) -> Int { xs[i] } }\nfunc firstOf<C: Container>(_ c: C) -> C.Item { c[0] }",
        "print(firstOf(Ints()), Ints().count)",
    ),
    s(
        "where clauses",
        'func allEqual<A: Sequence, B: Sequence>(_ a: A, _ b: B) -> Bool where A.Element == B.Element, A.Element: Equatable {\n    Array(a) == Array(b)\n}\nprint(allEqual([1, 2], [1, 2]), allEqual("ab", ["a", "c"]))',
    ),
    s(
        "generic extension",
        "extension Array where Element: Numeric { func total() -> Element { reduce(0, +) } }",
        "print([1, 2, 3].total(), [0.5, 0.25].total())",
    ),
    s(
        "generic subscript",
        "struct Bag { var xs = [10, 20, 30]\n    subscript<I: Sequence>(ids ids: I) -> [Int] where I.Element == Int { ids.map { xs[$0] } }\n}\nprint(Bag()[ids: [0, 2]])",
    ),
    s(
        "generic across cells",
        "func pairUp<A, B>(_ a: A, _ b: B) -> (A, B) { (a, b) }",
        'let pair = pairUp(1, "one")\nprint(pair.0, pair.1)',
    ),
]

OPAQUE_AND_EXISTENTIAL = [
    s(
        "shape protocol",
        'protocol Shape { func draw() -> String }\nstruct Tri: Shape { var size: Int; func draw() -> String { String(repeating: "*", count: size) } }\nstruct Sq: Shape { var size: Int; func draw() -> String { "[\\(size)]" } }',
    ),
    s(
        "opaque result in a function",
        "func makeTri() -> some Shape { Tri(size: 3) }\nfunc show() { print(makeTri().draw()) }\nshow()",
    ),
    s(
        "existential array",
        "let shapes: [any Shape] = [Tri(size: 2), Sq(size: 4)]\nfor shape in shapes { print(shape.draw()) }",
    ),
    s(
        "existential parameter",
        'func render(_ s: any Shape) -> String { "<" + s.draw() + ">" }\nprint(render(Sq(size: 1)))',
    ),
    s("some parameter", "func twice(_ s: some Shape) -> String { s.draw() + s.draw() }\nprint(twice(Tri(size: 1)))"),
    s(
        "type erasure by cast",
        'let anyValue: Any = Sq(size: 7)\nif let sq = anyValue as? Sq { print("square", sq.size) }\nprint(anyValue is any Shape)',
    ),
    s(
        "opaque global via existential",
        "func makeSq() -> some Shape { Sq(size: 2) }\nlet madeSq: any Shape = makeSq()\nprint(madeSq.draw())",
    ),
    s(
        "opaque global",
        "func makeShape() -> some Shape { Tri(size: 4) }",
        "let made = makeShape()\nprint(made.draw())",
        limit=("L7", "REPL limit L6/L7"),
    ),
]

OPERATORS = [
    s(
        "operator in one cell",
        "struct Vec { var x = 0.0, y = 0.0\n    static func + (l: Vec, r: Vec) -> Vec { Vec(x: l.x + r.x, y: l.y + r.y) }\n    static prefix func - (v: Vec) -> Vec { Vec(x: -v.x, y: -v.y) }\n    static func += (l: inout Vec, r: Vec) { l = l + r }\n}\nvar v1 = Vec(x: 1, y: 2)\nv1 += Vec(x: 3, y: 4)\nprint(-v1)",
    ),
    s(
        "custom infix with precedence",
        "precedencegroup PowerPrecedence {\n    higherThan: MultiplicationPrecedence\n    associativity: right\n}\ninfix operator **: PowerPrecedence\nfunc ** (b: Int, e: Int) -> Int { e == 0 ? 1 : b * (b ** (e - 1)) }\nprint(2 ** 3 ** 2, 2 * 3 ** 2)",
    ),
    s(
        "bitwise and shifts",
        "let bits: UInt8 = 0b0000_1111\nprint(~bits, bits << 2, bits >> 1, bits & 0b0101, bits | 0b1_0000, bits ^ 0b11)",
    ),
    s(
        "operators as top-level functions across cells",
        "struct Money { var cents: Int }",
        "func + (l: Money, r: Money) -> Money { Money(cents: l.cents + r.cents) }\nprefix operator ~~~\nprefix func ~~~ (v: inout Int) -> Int { v += 1; return v }",
        "var count = 1\nprint((Money(cents: 5) + Money(cents: 7)).cents, ~~~count)",
        "print(~~~count)",
    ),
    s(
        "equatable written in a later cell",
        "struct Pt { var x = 0.0 }",
        "extension Pt: Equatable { static func == (l: Pt, r: Pt) -> Bool { l.x == r.x } }",
        "print(Pt(x: 1) == Pt(x: 1), Pt(x: 1) == Pt(x: 2), Pt(x: 3) != Pt(x: 3))",
    ),
    s(
        "equatable via operator",
        "extension Vec: Equatable {}\nprint(Vec(x: 1) == Vec(x: 1), Vec(x: 1) == Vec(y: 1))",
        limit=("L10", "REPL limit L10"),
    ),
    s(
        "operator from a type of an earlier cell",
        "print(Vec(x: 1, y: 1) + Vec(x: 2, y: 0))",
        limit=("L3", "REPL limit L3"),
    ),
    s(
        "prefix operator across cells",
        "prefix operator +++",
        "extension Int { static prefix func +++ (v: inout Int) -> Int { v += 1; return v } }\nvar bumped = 1\nprint(+++bumped)",
        "print(+++bumped)",
        limit=("L3", "REPL limit L3"),
    ),
]

ERROR_HANDLING = [
    s(
        "enum errors",
        "enum VendingError: Error { case invalidSelection, insufficientFunds(coinsNeeded: Int), outOfStock }",
    ),
    s(
        "do catch",
        'func vend(_ coins: Int) throws -> String {\n    guard coins >= 5 else { throw VendingError.insufficientFunds(coinsNeeded: 5 - coins) }\n    return "snack"\n}',
        'do { print(try vend(7)); print(try vend(2)) }\ncatch VendingError.insufficientFunds(let n) { print("need", n) }\ncatch { print("other", error) }',
    ),
    s("try optional", 'print((try? vend(1)) as Any, (try? vend(9)) ?? "none")'),
    s(
        "rethrows",
        "func applyAll(_ xs: [Int], _ f: (Int) throws -> Int) rethrows -> [Int] { try xs.map(f) }\nprint(applyAll([1, 2]) { $0 * 2 })\ndo { _ = try applyAll([1]) { _ in throw VendingError.outOfStock } } catch { print(error) }",
    ),
    s("defer", 'func work() { defer { print("cleanup") }; print("working") }\nwork()'),
    s(
        "typed throws",
        'enum ParseError: Error { case empty }\nfunc parse(_ s: String) throws(ParseError) -> Int { if s.isEmpty { throw .empty }; return s.count }\ndo { _ = try parse("") } catch { print("typed", error) }',
    ),
    s(
        "result type",
        'let results: [Result<Int, VendingError>] = [.success(3), .failure(.outOfStock)]\nfor r in results { switch r { case .success(let v): print("ok", v); case .failure(let e): print("failed", e) } }',
    ),
    s(
        "error description",
        'struct Oops: Error, CustomStringConvertible { var description: String { "oops!" } }\ndo { throw Oops() } catch { print("caught \\(error)") }',
    ),
]

PROPERTY_WRAPPERS = [
    s(
        "wrapper type",
        "@propertyWrapper struct TwelveOrLess { private var number = 0\n    var wrappedValue: Int { get { number } set { number = min(newValue, 12) } }\n}",
    ),
    s(
        "wrapped in the same cell",
        "struct SmallRect { @TwelveOrLess var height: Int; @TwelveOrLess var width: Int }\nvar rect = SmallRect()\nrect.height = 10\nrect.width = 24\nprint(rect.height, rect.width)",
    ),
    s(
        "wrapper with projection",
        "@propertyWrapper struct Logged { var value: Int; var projectedValue: [Int] = []\n    init(wrappedValue: Int) { value = wrappedValue }\n    var wrappedValue: Int { get { value } set { projectedValue.append(newValue); value = newValue } }\n}\nstruct Account { @Logged var balance = 0 }\nvar account = Account()\naccount.balance = 5\naccount.balance = 9\nprint(account.balance, account.$balance)",
    ),
    s(
        "wrapper in a function",
        "func localWrapped() { @TwelveOrLess var local: Int\n    local = 40\n    print(local)\n}\nlocalWrapped()",
    ),
    s(
        "wrapped property read in a later cell",
        "struct Settings { @TwelveOrLess var epochs: Int }\nvar settings = Settings()\nsettings.epochs = 50",
        "print(settings.epochs)",
        limit=("L2", "REPL limit L2"),
    ),
]

ACCESS_CONTROL = [
    s(
        "private members",
        "struct Safe { private var code = 1234\n    func check(_ c: Int) -> Bool { c == code }\n}\nprint(Safe().check(1234), Safe().check(1))",
    ),
    s(
        "private set",
        "struct Tally { private(set) var count = 0\n    mutating func add() { count += 1 }\n}\nvar tally = Tally()\ntally.add()\ntally.add()",
        "print(tally.count)",
    ),
    s("fileprivate helper", 'fileprivate func helper() -> String { "helped" }\nprint(helper())'),
    s(
        "public and internal",
        "public struct Api { public var version = 2; internal var build = 7; public init() {} }",
        "print(Api().version, Api().build)",
    ),
    s(
        "open class",
        'open class Base { open func name() -> String { "base" } }\nfinal class Leaf: Base { override func name() -> String { "leaf" } }',
        "print(Leaf().name(), (Leaf() as Base).name())",
    ),
]

CONCURRENCY = [
    s("import", "import Foundation"),
    s(
        "task and semaphore",
        "func slowDouble(_ x: Int) async -> Int { x * 2 }\nlet done = DispatchSemaphore(value: 0)\nvar doubled = 0\nTask { doubled = await slowDouble(21); done.signal() }\ndone.wait()\nprint(doubled)",
    ),
    s(
        "task group",
        "let groupDone = DispatchSemaphore(value: 0)\nvar groupSum = 0\nTask {\n    groupSum = await withTaskGroup(of: Int.self) { group in\n        for i in 1...10 { group.addTask { i * i } }\n        return await group.reduce(0, +)\n    }\n    groupDone.signal()\n}\ngroupDone.wait()\nprint(groupSum)",
    ),
    s(
        "actor",
        "actor Bank { var balance = 0\n    func deposit(_ n: Int) -> Int { balance += n; return balance }\n}\nlet bank = Bank()\nlet bankDone = DispatchSemaphore(value: 0)\nvar finalBalance = 0\nTask {\n    for _ in 0..<5 { _ = await bank.deposit(10) }\n    finalBalance = await bank.balance\n    bankDone.signal()\n}\nbankDone.wait()\nprint(finalBalance)",
    ),
    s(
        "async throws",
        'enum NetError: Error { case offline }\nfunc fetch(_ ok: Bool) async throws -> String { if !ok { throw NetError.offline }; return "data" }\nlet fetchDone = DispatchSemaphore(value: 0)\nvar fetched: [String] = []\nTask {\n    fetched.append((try? await fetch(true)) ?? "nil")\n    do { _ = try await fetch(false) } catch { fetched.append("\\(error)") }\n    fetchDone.signal()\n}\nfetchDone.wait()\nprint(fetched)',
    ),
    s(
        "async let in a task",
        "let letsDone = DispatchSemaphore(value: 0)\nvar both = (0, 0)\nTask {\n    async let a = slowDouble(1)\n    async let b = slowDouble(2)\n    both = await (a, b)\n    letsDone.signal()\n}\nletsDone.wait()\nprint(both)",
    ),
    s(
        "dispatch queue",
        'let queueDone = DispatchSemaphore(value: 0)\nvar fromQueue = ""\nDispatchQueue.global().async { fromQueue = "background"; queueDone.signal() }\nqueueDone.wait()\nprint(fromQueue)',
    ),
]

STRINGS = [
    s("import", "import Foundation"),
    s("interpolation", 'let apples = 3\nprint("I have \\(apples) apples and \\(apples * 2) pears")'),
    s(
        "multiline",
        'let quote = """\n    The White Rabbit put on his spectacles.\n      "Where shall I begin?"\n    """\nprint(quote)',
    ),
    s(
        "unicode",
        'let flags = "🇫🇷🇩🇪"\nlet cafe = "caf\\u{E9}"\nprint(flags.count, flags.unicodeScalars.count, cafe == "café", cafe.utf8.count)',
    ),
    s(
        "indices",
        'let greeting = "Guten Tag!"\nlet idx = greeting.index(greeting.startIndex, offsetBy: 7)\nprint(greeting[idx], greeting[..<greeting.firstIndex(of: " ")!])',
    ),
    s(
        "split and join",
        'let csv = "a,b,,c"\nprint(csv.split(separator: ",").map(String.init), csv.components(separatedBy: ",").count)',
    ),
    s(
        "case and search",
        'let title = "Swift Programming"\nprint(title.uppercased(), title.hasPrefix("Swift"), title.contains("gram"), title.lowercased().filter { "aeiou".contains($0) })',
    ),
    s(
        "characters",
        'var word = "cafe"\nword += "\\u{301}"\nprint(word, word.count, word.last!, Array("abc").reversed().map(String.init).joined())',
    ),
    s("raw strings", 'print(#"Line with \\n and "quotes""#, #"interp \\#(1 + 1)"#)'),
    s(
        "regex",
        'let line = "2024-01-15 error: disk full"\nif let m = line.firstMatch(of: /(\\d+)-(\\d+)-(\\d+)/) { print(m.1, m.2, m.3) }\nprint(line.replacing(/\\d/, with: "#"))',
    ),
    s("formatting numbers", 'print(String(255, radix: 16), String(format: "%.2f", 3.14159), Int("ff", radix: 16)!)'),
]

DECLARATIONS = [
    s(
        "a global read by a later function",
        "var limit = 3",
        "func underLimit(_ n: Int) -> Bool { n < limit }",
        "limit = 10\nprint(underLimit(5))",
    ),
    s("shadowing in a scope", "let shadowed = 1\ndo { let shadowed = 2; print(shadowed) }\nprint(shadowed)"),
    s(
        "overloads",
        'func describe(_ v: Int) -> String { "Int \\(v)" }\nfunc describe(_ v: String) -> String { "String \\(v)" }',
        'print(describe(1), describe("x"))',
    ),
    s("typealias", "typealias AudioSample = UInt16\nprint(AudioSample.max)"),
    s(
        "nested types",
        'struct Deck { enum Suit: String { case spades = "♠", hearts = "♡" }\n    struct Card { let rank: Int; let suit: Suit }\n}',
        "print(Deck.Card(rank: 1, suit: .hearts).suit.rawValue)",
    ),
    s(
        "a function of an earlier cell after a new type",
        "struct Payload { var size = 1 }\nfunc download() -> Payload { Payload() }",
        "struct Payload2 {}\nprint(download().size)",
    ),
    s(
        "a throwing function beside a plain one",
        "func answer() -> Int { 1 }",
        "func answer2() throws -> Int { 2 }\nprint(answer(), try answer2())",
    ),
]

CHAPTERS: dict[str, list[Snippet]] = {
    "basics": BASICS,
    "control_flow": CONTROL_FLOW,
    "functions_and_closures": FUNCTIONS_AND_CLOSURES,
    "enums": ENUMS,
    "structs_and_classes": STRUCTS_AND_CLASSES,
    "protocols_and_extensions": PROTOCOLS_AND_EXTENSIONS,
    "generics": GENERICS,
    "opaque_and_existential": OPAQUE_AND_EXISTENTIAL,
    "operators": OPERATORS,
    "error_handling": ERROR_HANDLING,
    "property_wrappers": PROPERTY_WRAPPERS,
    "access_control": ACCESS_CONTROL,
    "concurrency": CONCURRENCY,
    "strings": STRINGS,
    "declarations": DECLARATIONS,
}
