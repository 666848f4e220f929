// Tables, charts and images for `Jupyter`: compiled into the Swift process the first time a cell
// uses one of them (displayable.needs_extras), not at every start with the prelude. Swift only
// gathers the data; the kernel draws it (swift_kernel/charts.py, tables.py, display.encode_png),
// which keeps this file, and so its compile time, small.

extension Jupyter {
    // ----- tables -------------------------------------------------------------------------------

    /// Show a collection (an array of structs, classes or tuples, a dictionary, a set) as a table
    /// with one column per stored property; of a longer one, the first and last `rows / 2` rows.
    static func table<T>(_ value: T, rows: Int = 20, id: String? = nil, update: Bool = false) {
        display([__JupyterTable.mime: __JupyterTable.json(value, rows: rows)], id: id, update: update)
    }

    // ----- charts: Vega-Lite, which JupyterLab draws by itself, with a text fallback -------------

    /// Draw a line through the points (x[i], y[i]).
    static func plot<X: Numeric, Y: Numeric>(
        x: [X], y: [Y], title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
        id: String? = nil, update: Bool = false
    ) {
        chart("line", x: __SwiftKernel.numbers(x), y: y, title, xLabel, yLabel, id, update)
    }

    /// Draw a line through the values against their index (a loss curve).
    static func plot<Y: Numeric>(
        _ y: [Y], title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
        id: String? = nil, update: Bool = false
    ) {
        chart("line", x: nil, y: y, title, xLabel, yLabel, id, update)
    }

    /// Draw the points (x[i], y[i]).
    static func scatter<X: Numeric, Y: Numeric>(
        x: [X], y: [Y], title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
        id: String? = nil, update: Bool = false
    ) {
        chart("point", x: __SwiftKernel.numbers(x), y: y, title, xLabel, yLabel, id, update)
    }

    /// Draw one bar per label, as high as its value.
    static func bar<V: Numeric>(
        labels: [String], values: [V], title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
        id: String? = nil, update: Bool = false
    ) {
        let names = "[" + labels.map(__SwiftKernel.json).joined(separator: ",") + "]"
        chart("bar", x: nil, y: values, title, xLabel, yLabel, id, update, extra: ",\"labels\":\(names)")
    }

    /// Count the values in `bins` bins of equal width from the least to the greatest; draw the counts.
    static func histogram<V: Numeric>(
        _ values: [V], bins: Int = 10, title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
        id: String? = nil, update: Bool = false
    ) {
        chart("histogram", x: nil, y: values, title, xLabel, yLabel, id, update, extra: ",\"bins\":\(bins)")
    }

    private static func chart<Y: Numeric>(
        _ mark: String, x: String?, y: [Y], _ title: String?, _ xLabel: String?, _ yLabel: String?,
        _ id: String?, _ update: Bool, extra: String = ""
    ) {
        var fields = "{\"mark\":\"\(mark)\",\"y\":\(__SwiftKernel.numbers(y))" + extra
        if let x = x { fields += ",\"x\":" + x }
        for (name, text) in [("title", title), ("xLabel", xLabel), ("yLabel", yLabel)] {
            if let text = text { fields += ",\"\(name)\":" + __SwiftKernel.json(text) }
        }
        display(["application/x.swift-kernel.chart+json": fields + "}"], id: id, update: update)
    }

    // ----- images from pixels: the kernel encodes the PNG ----------------------------------------

    /// Show `width` x `height` pixels, 4 bytes each (red, green, blue, alpha), row by row from the top.
    static func image(width: Int, height: Int, rgba: [UInt8], id: String? = nil, update: Bool = false) {
        pixels(width, height, 4, rgba, id, update)
    }

    /// Show `width` x `height` gray pixels, one byte each (0 black, 255 white).
    static func image(width: Int, height: Int, gray: [UInt8], id: String? = nil, update: Bool = false) {
        pixels(width, height, 1, gray, id, update)
    }

    /// Show `width` x `height` numbers as gray pixels, the least black and the greatest white (a heat map).
    static func image<V: Numeric>(width: Int, height: Int, gray: [V], id: String? = nil, update: Bool = false) {
        let values = __SwiftKernel.doubles(gray)
        let finite = values.filter { $0.isFinite }
        let low = finite.min() ?? 0
        let scale = (finite.max() ?? 0) > low ? 255 / (finite.max()! - low) : 0
        pixels(width, height, 1, values.map { $0.isFinite ? UInt8(((($0 - low) * scale)).rounded()) : 0 }, id, update)
    }

    private static func pixels(_ width: Int, _ height: Int, _ channels: Int, _ bytes: [UInt8], _ id: String?, _ update: Bool) {
        let pixels = "{\"width\":\(width),\"height\":\(height),\"channels\":\(channels),\"data\":\"\(__SwiftKernel.base64(bytes))\"}"
        display(["application/x.swift-kernel.pixels+json": pixels], id: id, update: update)
    }
}

extension __SwiftKernel {
    /// The cell's result as a table (`%display tables on`) when it is a collection of rows with
    /// fields; as Swift describes it otherwise.
    static func describe<T>(_ value: T, tables: Bool) {
        if tables, __JupyterTable.isTabular(value) {
            // Its text is the table's (the kernel draws it): the whole collection described could be huge.
            send("bundle", object([__JupyterTable.mime: __JupyterTable.json(value, rows: 20)]))
        } else {
            describe(value)
        }
    }

    static func describe<T: JupyterDisplayable>(_ value: T, tables: Bool) { describe(value) }

    /// Numbers as Doubles: integers and floating-point numbers; NaN for other kinds.
    static func doubles<N: Numeric>(_ values: [N]) -> [Double] {
        if let doubles = values as? [Double] { return doubles }
        return values.map { value in
            if let integer = value as? any BinaryInteger { return Double(integer) }
            if let float = value as? any BinaryFloatingPoint { return Double(float) }
            return .nan
        }
    }

    /// Numbers as a JSON array (NaN and the infinities, which JSON lacks, as null).
    static func numbers<N: Numeric>(_ values: [N]) -> String {
        "[" + doubles(values).map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ",") + "]"
    }
}

/// A collection's rows, one field per stored property (Mirror), bounded in size, as JSON.
enum __JupyterTable {
    static let mime = "application/x.swift-kernel.table+json"
    static let maxColumns = 30
    static let maxCellCharacters = 200

    /// Say whether a value is a collection whose rows have fields (structs, classes, tuples, pairs).
    static func isTabular<T>(_ value: T) -> Bool {
        let mirror = Mirror(reflecting: value)
        guard [.collection, .set, .dictionary].contains(mirror.displayStyle),
              let first = mirror.children.first?.value else { return false }
        let row = Mirror(reflecting: first)
        return [.struct, .class, .tuple].contains(row.displayStyle) && !row.children.isEmpty
    }

    /// {"columns": [...], "rows": [[...]], "total": N, "gap": index of the rows left out or null}
    static func json<T>(_ value: T, rows limit: Int) -> String {
        let mirror = Mirror(reflecting: value)
        let limit = max(2, limit)
        var shown: [Any] = [value]
        var total = 1
        var gap = "null"
        if [.collection, .set, .dictionary].contains(mirror.displayStyle) {
            let children = mirror.children
            total = children.count
            if total > limit {
                gap = "\(limit / 2)"
                shown = children.prefix(limit / 2).map(\.value) + children.suffix(limit - limit / 2).map(\.value)
            } else {
                shown = children.map(\.value)
            }
        }
        var columns: [String] = []
        var omitted = 0
        var rows: [String] = []
        for row in shown {
            __swiftKernelSafePoint()
            var cells = [String](repeating: "null", count: columns.count)
            for (label, cell) in fields(of: row, expandValue: mirror.displayStyle == .dictionary) {
                var index = columns.firstIndex(of: label)
                if index == nil {
                    guard columns.count < maxColumns else { omitted += 1; continue }
                    columns.append(label)
                    cells.append("null")
                    index = columns.count - 1
                }
                cells[index!] = __SwiftKernel.json(cell)
            }
            rows.append("[" + cells.joined(separator: ",") + "]")
        }
        let names = columns.map(__SwiftKernel.json).joined(separator: ",")
        return "{\"columns\":[\(names)],\"rows\":[\(rows.joined(separator: ","))],\"total\":\(total),"
            + "\"gap\":\(gap),\"omittedColumns\":\(omitted)}"
    }

    /// A row's fields: its stored properties (a dictionary's value's too), or itself in one column.
    static func fields(of row: Any, expandValue: Bool) -> [(String, String)] {
        let mirror = Mirror(reflecting: row)
        guard [.struct, .class, .tuple].contains(mirror.displayStyle), !mirror.children.isEmpty else {
            return [("value", cell(row))]
        }
        var fields: [(String, String)] = []
        for (index, child) in mirror.children.enumerated() {
            var label = child.label ?? "\(index)"
            if label.hasPrefix(".") { label.removeFirst() }
            if expandValue, label == "value", isRecord(child.value) {
                fields += Self.fields(of: child.value, expandValue: false)
            } else {
                fields.append((label, cell(child.value)))
            }
        }
        return fields
    }

    static func isRecord(_ value: Any) -> Bool {
        let mirror = Mirror(reflecting: value)
        return [.struct, .class, .tuple].contains(mirror.displayStyle) && !mirror.children.isEmpty
    }

    /// One cell's text: optionals unwrapped, long text cut.
    static func cell(_ value: Any) -> String {
        let mirror = Mirror(reflecting: value)
        var text = String(describing: value)
        if mirror.displayStyle == .optional {
            text = mirror.children.first.map { cell($0.value) } ?? "nil"
        }
        return text.count > maxCellCharacters ? String(text.prefix(maxCellCharacters - 1)) + "…" : text
    }
}
