"""Test the rewrite of top-level ``await`` into blocking prelude calls."""

from __future__ import annotations

import pytest

from swift_kernel.asyncwrap import AwaitRewriteError, rewrite_top_level_await

# What the rewrite puts around an awaited expression.
ON = "(__SwiftKernel.blockOn { "
THROWING = "(__SwiftKernel.blockOnThrowing { "
END = " })"

# (name, cell, expected rewrite); the name says which rule the case exercises.
REWRITES: list[tuple[str, str, str]] = [
    # The extent of an await: the rest of its expression.
    ("let", "let page = await fetchPage()", f"let page = {ON}await fetchPage(){END}"),
    ("statement", "await refresh()", f"{ON}await refresh(){END}"),
    ("rest of the expression", "let n = await a() + b", f"let n = {ON}await a() + b{END}"),
    ("assignment", "x = await f()\n_ = await g()", f"x = {ON}await f(){END}\n_ = {ON}await g(){END}"),
    ("cast is part of it", "let y = await f() as! Int", f"let y = {ON}await f() as! Int{END}"),
    ("optional chain", "let u = await g()?.value ?? 0", f"let u = {ON}await g()?.value ?? 0{END}"),
    ("parenthesized operand", "let v = await (a(), b())", f"let v = {ON}await (a(), b()){END}"),
    ("nested await stays inside", "let v = await f(await g())", f"let v = {ON}await f(await g()){END}"),
    # It ends at "," ")" "]" ":" at its own depth.
    ("call argument", "print(await f(), 1)", f"print({ON}await f(){END}, 1)"),
    ("two arguments", "print(await f(), await g())", f"print({ON}await f(){END}, {ON}await g(){END})"),
    ("labeled argument", "show(title: await t())", f"show(title: {ON}await t(){END})"),
    ("subscript", "xs[await i()] = 1", f"xs[{ON}await i(){END}] = 1"),
    ("array elements", "let a = [await x(), await y()]", f"let a = [{ON}await x(){END}, {ON}await y(){END}]"),
    ("dictionary key and value", "let d = [await k(): await v()]", f"let d = [{ON}await k(){END}: {ON}await v(){END}]"),
    ("tuple", "let (a, b) = (await x(), await y())", f"let (a, b) = ({ON}await x(){END}, {ON}await y(){END})"),
    ("several bindings", "let a = await x(), b = await y()", f"let a = {ON}await x(){END}, b = {ON}await y(){END}"),
    ("ternary branches", "let r = c ? await a() : await b()", f"let r = c ? {ON}await a(){END} : {ON}await b(){END}"),
    ("ternary inside", "let r = await ok() ? 1 : 2", f"let r = {ON}await ok() ? 1 : 2{END}"),
    # ... at ";" and at line breaks, unless the expression goes on.
    ("semicolon", "let a = await f(); print(a)", f"let a = {ON}await f(){END}; print(a)"),
    ("newline", "let a = await f()\nprint(a)", f"let a = {ON}await f(){END}\nprint(a)"),
    ("open call spans lines", "let x = await f(\n    1,\n    2\n)", f"let x = {ON}await f(\n    1,\n    2\n){END}"),
    ("trailing operator", "let n = await a() +\n    b\nprint(n)", f"let n = {ON}await a() +\n    b{END}\nprint(n)"),
    (
        "leading dot chain",
        "let s = await fetch()\n    .text\n    .count\nprint(s)",
        f"let s = {ON}await fetch()\n    .text\n    .count{END}\nprint(s)",
    ),
    ("leading binary operator", "let v = await a()\n    ?? 0", f"let v = {ON}await a()\n    ?? 0{END}"),
    ("prefix operator starts a statement", "let x = await f()\n-1", f"let x = {ON}await f(){END}\n-1"),
    ("await alone on its line", "let v =\n    await\n    f()", f"let v =\n    {ON}await\n    f(){END}"),
    ("comment after", "let x = await f() // await more", f"let x = {ON}await f(){END} // await more"),
    ("block comment after", "let z = await f() /* c */\nprint(z)", f"let z = {ON}await f(){END} /* c */\nprint(z)"),
    # A trailing closure belongs to the expression, except where "{" opens a body.
    (
        "trailing closure",
        "let n = await withTaskGroup(of: Int.self) { group in\n    await group.next() ?? 0\n}\nprint(n)",
        f"let n = {ON}await withTaskGroup(of: Int.self) {{ group in\n    await group.next() ?? 0\n}}{END}\nprint(n)",
    ),
    ("if condition", "if await ok() {\n    print(1)\n}", f"if {ON}await ok(){END} {{\n    print(1)\n}}"),
    (
        "closure argument in condition",
        "if await xs.contains(where: { $0 > 1 }) {\n}",
        f"if {ON}await xs.contains(where: {{ $0 > 1 }}){END} {{\n}}",
    ),
    ("condition list", "if let v = await f(), v > 0 {}", f"if let v = {ON}await f(){END}, v > 0 {{}}"),
    (
        "guard else",
        "guard let v = await f() else { fatalError() }",
        f"guard let v = {ON}await f(){END} else {{ fatalError() }}",
    ),
    (
        "while condition and body",
        "while let item = await queue.next() {\n    await handle(item)\n}",
        f"while let item = {ON}await queue.next(){END} {{\n    {ON}await handle(item){END}\n}}",
    ),
    (
        "for sequence, where clause and body",
        "for x in await list() where x > 1 {\n    await use(x)\n}",
        f"for x in {ON}await list(){END} where x > 1 {{\n    {ON}await use(x){END}\n}}",
    ),
    (
        "switch subject and cases",
        "switch await kind() {\ncase .a: await a()\ndefault: break\n}",
        f"switch {ON}await kind(){END} {{\ncase .a: {ON}await a(){END}\ndefault: break\n}}",
    ),
    # Top-level code includes the bodies of top-level statements.
    ("closing brace of a body", "if c { await f() }", f"if c {{ {ON}await f(){END} }}"),
    ("else body", "if c {\n} else {\n    await f()\n}", f"if c {{\n}} else {{\n    {ON}await f(){END}\n}}"),
    (
        "guard body",
        "guard ok else {\n    await report()\n    fatalError()\n}",
        f"guard ok else {{\n    {ON}await report(){END}\n    fatalError()\n}}",
    ),
    (
        "repeat while",
        "repeat {\n    await step()\n} while await more()\nlet f = { await g() }",
        f"repeat {{\n    {ON}await step(){END}\n}} while {ON}await more(){END}\nlet f = {{ await g() }}",
    ),
    (
        "do catch",
        "do {\n    try await f()\n} catch {\n    await report(error)\n}",
        f"do {{\n    try {THROWING}try await f(){END}\n}} catch {{\n    {ON}await report(error){END}\n}}",
    ),
    (
        "catch pattern",
        "do {\n} catch let e as E where e.code == 1 {\n    await log(e)\n}",
        f"do {{\n}} catch let e as E where e.code == 1 {{\n    {ON}await log(e){END}\n}}",
    ),
    ("defer", "defer { await cleanup() }", f"defer {{ {ON}await cleanup(){END} }}"),
    (
        "nested statements",
        "for i in 0..<3 {\n    if i > 0 {\n        await tick(i)\n    }\n}",
        f"for i in 0..<3 {{\n    if i > 0 {{\n        {ON}await tick(i){END}\n    }}\n}}",
    ),
    ("#if block", "#if DEBUG\nawait f()\n#endif", f"#if DEBUG\n{ON}await f(){END}\n#endif"),
    # Only the top-level ones, beside functions, closures and types.
    (
        "after a function",
        "func f() async -> Int {\n    await g()\n}\nlet v = await f()",
        f"func f() async -> Int {{\n    await g()\n}}\nlet v = {ON}await f(){END}",
    ),
    (
        "after a closure",
        "let xs = ys.map { $0 }\nif await ok() {}",
        f"let xs = ys.map {{ $0 }}\nif {ON}await ok(){END} {{}}",
    ),
    (
        "after a type",
        "struct S {\n    var v: Int { get async { await load() } }\n}\nlet v = await S().v",
        f"struct S {{\n    var v: Int {{ get async {{ await load() }} }}\n}}\nlet v = {ON}await S().v{END}",
    ),
    # try.
    ("try", "try await g()", f"try {THROWING}try await g(){END}"),
    ("let try", "let x = try await g()", f"let x = try {THROWING}try await g(){END}"),
    ("try?", "let x = try? await g()", f"let x = try? {THROWING}try await g(){END}"),
    ("try!", "let x = try! await g()", f"let x = try! {THROWING}try await g(){END}"),
    (
        "try? in guard",
        "guard let v = try? await f() else { fatalError() }",
        f"guard let v = try? {THROWING}try await f(){END} else {{ fatalError() }}",
    ),
    ("try covering the call", "let y = try foo(await g())", f"let y = try foo({THROWING}try await g(){END})"),
    ("try inside the expression", "let y = await f(try g())", f"let y = try {THROWING}await f(try g()){END}"),
    ("try? inside does not throw", "let y = await f(try? g())", f"let y = {ON}await f(try? g()){END}"),
    (
        "try ends with its statement",
        "let a = try f()\nlet b = await g()",
        f"let a = try f()\nlet b = {ON}await g(){END}",
    ),
    # Strings and comments.
    ("interpolation", 'print("got \\(await f())")', f'print("got \\({ON}await f(){END})")'),
    ("interpolation and text", 'print("\\(await f()) and await")', f'print("\\({ON}await f(){END}) and await")'),
    (
        "multi-line string interpolation",
        'let m = """\n    \\(await f())\n    """',
        f'let m = """\n    \\({ON}await f(){END})\n    """',
    ),
    (
        "interpolation in a statement body",
        'if c {\n    print("\\(await f())")\n}',
        f'if c {{\n    print("\\({ON}await f(){END})")\n}}',
    ),
    ("try in an interpolation", 'let v = await f("\\(try g())")', f'let v = try {THROWING}await f("\\(try g())"){END}'),
    ("raw string interpolation", 'print(#"\\#(await f())"#)', f'print(#"\\#({ON}await f(){END})"#)'),
    ("string operand", 'let s = await f() + "a\\(b)c"', f'let s = {ON}await f() + "a\\(b)c"{END}'),
    (
        "await in a string beside one",
        'let s = "await"; let v = await f()',
        f'let s = "await"; let v = {ON}await f(){END}',
    ),
    ("label is not an await", "f(await: 1)\nlet v = await g()", f"f(await: 1)\nlet v = {ON}await g(){END}"),
    ("CRLF line breaks", "let a = await f()\r\nprint(a)\r\n", f"let a = {ON}await f(){END}\r\nprint(a)\r\n"),
]

# Cells that must come back as the very same string.
UNCHANGED: list[tuple[str, str]] = [
    ("empty", ""),
    ("no await", "let x = 1\nprint(x)"),
    ("identifier containing await", "let awaited = 1\nlet reawait = awaited"),
    ("escaped identifier", "let `await` = 1\nprint(`await` + 1)"),
    ("member", "x.await()"),
    ("argument label", "f(await: 1)"),
    ("variable named await", "let await = 1"),
    ("string", 'print("await f()")'),
    ("multi-line string", 'let s = """\n    await f()\n    """'),
    ("raw string without interpolation", 'let s = #"\\(await x)"#'),
    ("line comment", "// await f()\nlet x = 1"),
    ("nested block comment", "/* await /* nested */ await f() */\nlet x = 1"),
    ("function body", "func f() async -> Int {\n    await g()\n}"),
    ("interpolation in a closure", 'Task { print("\\(await f())") }'),
    ("try in prose beside an interpolation", 'print("try again in \\(n) seconds")'),
    ("interpolation in a function body", 'func f() async {\n    print("\\(await g())")\n}'),
    ("async closure", "let handler: () async -> Void = { await work() }"),
    ("closure called at once", "let v = { await x() }"),
    ("Task", "Task {\n    await f()\n}"),
    ("Task with attribute", "Task { @MainActor in await x() }"),
    ("trailing closure", "xs.forEach { await $0() }"),
    ("closure in a condition", "if xs.contains(where: { await $0.ok() }) {\n}"),
    ("computed property", "var total: Int {\n    get async { await load() }\n}"),
    ("property observer", "var x = 1 {\n    didSet { Task { await save(x) } }\n}"),
    (
        "type bodies",
        "struct S { func f() async { await g() } }\nclass C {\n    init() async { await setUp() }\n"
        "    deinit { Task { await tearDown() } }\n    subscript(i: Int) -> Int { get async { await at(i) } }\n}\n"
        "enum E { case a\n    func f() async { await g() } }\nactor A { func f() async { await g() } }\n"
        "protocol P { func f() async }\nextension P { func g() async { await f() } }",
    ),
    ("unsupported forms inside a function", "func f() async {\n    async let x = g()\n    for await y in s {}\n}"),
    ("unsupported forms inside a Task", "Task {\n    for try await line in lines {}\n}"),
    ("async function type", "let f: () async -> Int = g"),
]

# (name, cell, form, line)
ERRORS: list[tuple[str, str, str, int]] = [
    ("for await", "for await x in seq {\n    print(x)\n}", "for await", 1),
    ("for try await", "let s = stream()\nfor try await x in s {}", "for try await", 2),
    ("async let", "async let x = f()", "async let", 1),
    ("async let in a statement body", "if c {\n    async let y = f()\n}", "async let", 2),
    ("for await in a body after a function", "func f() async {}\ndo {\n    for await x in s {}\n}", "for await", 3),
]


@pytest.mark.parametrize(("code", "expected"), [pytest.param(c, e, id=n) for n, c, e in REWRITES])
def test_rewrite(code: str, expected: str) -> None:
    """Check each top-level await becomes the expected blocking call."""
    assert rewrite_top_level_await(code) == expected


@pytest.mark.parametrize("code", [pytest.param(c, id=n) for n, c, _ in REWRITES])
def test_rewrite_keeps_lines(code: str) -> None:
    """Check the rewrite adds no line break, so diagnostics keep their lines."""
    rewritten = rewrite_top_level_await(code)
    assert rewritten.count("\n") == code.count("\n")
    assert rewritten.count("\r") == code.count("\r")


@pytest.mark.parametrize("code", [pytest.param(c, id=n) for n, c, _ in REWRITES])
def test_rewrite_is_idempotent(code: str) -> None:
    """Check a rewritten cell has no top-level await left: a second pass returns it as is."""
    rewritten = rewrite_top_level_await(code)
    assert rewrite_top_level_await(rewritten) is rewritten


@pytest.mark.parametrize("code", [pytest.param(c, id=n) for n, c in UNCHANGED])
def test_unchanged_is_identical(code: str) -> None:
    """Check a cell without top-level await comes back as the same object."""
    assert rewrite_top_level_await(code) is code


@pytest.mark.parametrize(("code", "form", "line"), [pytest.param(c, f, ln, id=n) for n, c, f, ln in ERRORS])
def test_unsupported_form(code: str, form: str, line: int) -> None:
    """Check unsupported top-level forms are refused with their name and line."""
    with pytest.raises(AwaitRewriteError) as caught:
        rewrite_top_level_await(code)
    assert caught.value.form == form
    assert caught.value.line == line
    message = str(caught.value)
    assert f"`{form}`" in message
    assert f"line {line}" in message
    assert "Task { ... }" in message


def test_error_is_a_value_error() -> None:
    """Check callers that catch ValueError also catch the rewrite's refusals."""
    with pytest.raises(ValueError, match="async let"):
        rewrite_top_level_await("async let x = f()")


def test_line_of_error_counts_cr_line_breaks() -> None:
    """Check the reported line counts CRLF and lone CR breaks once each."""
    with pytest.raises(AwaitRewriteError) as caught:
        rewrite_top_level_await("let a = 1\r\nlet b = 2\rasync let c = f()")
    assert caught.value.line == 3


# --- A megabyte ---------------------------------------------------------------------

_BODIES = (
    "/// Fetches page {n} and counts its words.\n"
    "func page{n}(_ url: String) async throws -> [String: Int] {{\n"
    "    let data = try await fetch(url, retries: {n} % 3)\n"
    "    var counts: [String: Int] = [:]\n"
    '    for word in data.split(separator: " ") where !word.isEmpty {{\n'
    "        counts[String(word), default: 0] += 1\n"
    "    }}\n"
    '    print("page \\(url): \\(counts.count) words, \\(await cache.size()) cached")\n'
    "    return counts\n"
    "}}\n"
    "struct Model{n}: Codable {{\n"
    '    var name = "model {n}" // the display name {{\n'
    "    var weights: [Double] = []\n"
    "    var total: Double {{ weights.reduce(0, +) }}\n"
    "    func load() async {{ await Task.yield() }}\n"
    "}}\n"
)
_TOP_LEVEL = (
    "// Top-level statements for item {n}: await only in closures.\n"
    "let items{n} = [1, 2, 3].map {{ $0 * {n} }}\n"
    "if items{n}.count > 2 {{\n"
    '    print("many: \\(items{n})")\n'
    "}} else {{\n"
    "    print(items{n}.first ?? 0)\n"
    "}}\n"
    'Task {{ await page{n}("https://example.com/{n}") }}\n'
    "for (i, x) in items{n}.enumerated() {{ total += i * x }}\n"
)
_MEGABYTE = 1 << 20


def _megabyte(block: str) -> str:
    """Repeat ``block`` (numbered) to about one megabyte of Swift source."""
    parts: list[str] = []
    size = 0
    while size < _MEGABYTE:
        part = block.format(n=len(parts))
        parts.append(part)
        size += len(part)
    return "".join(parts)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "block",
    [
        pytest.param(_BODIES, id="function and type bodies"),
        pytest.param(_TOP_LEVEL, id="top-level statements and closures"),
        pytest.param(_BODIES + _TOP_LEVEL, id="mixed"),
    ],
)
def test_megabyte_without_top_level_await_is_identical(block: str) -> None:
    """Check a megabyte with awaits only in bodies comes back as the same object."""
    code = _megabyte(block)
    assert rewrite_top_level_await(code) is code


@pytest.mark.timeout(60)
def test_megabyte_with_top_level_awaits() -> None:
    """Check every top-level await in a megabyte is rewritten, and only those."""
    block = _BODIES + _TOP_LEVEL + "let result{n} = try await page{n}(url)\n"
    code = _megabyte(block)
    rewritten = rewrite_top_level_await(code)
    statements = code.count("let result")
    assert rewritten.count(THROWING + "try await page") == statements
    assert rewritten.count("__SwiftKernel") == statements
    assert rewritten.count("\n") == code.count("\n")
    assert rewritten.replace(THROWING + "try ", "").replace(END, "") == code


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "code",
    [
        pytest.param("{" * _MEGABYTE + "await f()", id="unclosed braces"),
        pytest.param("(" * _MEGABYTE + "await f()", id="unclosed parentheses"),
        pytest.param("/*" * (_MEGABYTE // 2) + "await f()", id="nested comments"),
        pytest.param("#" * _MEGABYTE + '"await', id="hashes"),
        pytest.param("let x = await f(" + "(" * _MEGABYTE, id="unclosed await call"),
        pytest.param("let a = await f {" + " { " * (_MEGABYTE // 4) + " }" * (_MEGABYTE // 4), id="deep closures"),
        pytest.param("Task { await f() }\n" * (_MEGABYTE // 19), id="many closures"),
    ],
)
def test_megabyte_adversarial_input_finishes(code: str) -> None:
    """Check pathological megabytes finish (pytest-timeout catches a hang) without changing lines."""
    assert rewrite_top_level_await(code).count("\n") == code.count("\n")
