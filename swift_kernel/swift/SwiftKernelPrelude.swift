// The kernel's Swift API, in every Swift process: the result channel, value descriptions, the
// display API (`Jupyter`, `JupyterDisplayable`). Compiled once per toolchain into a library that
// each Swift process loads (swift_kernel/prelude.py), which takes a start about 0.5 s less than
// compiling it in LLDB every time; compiled in LLDB, as before, when that library cannot be built.
// Public: cells see it through `import SwiftKernelPrelude`.
import Glibc
import Dispatch

public final class __SwiftKernelBox<T>: @unchecked Sendable {
    public var value: T?
    public var error: Error?
    public init() {}
}

public enum __SwiftKernel {
    /// The kernel's result channel, on a high fd and closed on exec: out of the way of the fds a
    /// cell opens (the lowest free ones, after it closed some) and of the programs it starts.
    /// Opened again (`restoreStreams`) when a cell closed or replaced it.
    nonisolated(unsafe) public static var channel: Int32 = openChannel()
    /// Where the channel leads (the kernel's pipe); set by the prelude before the channel opens.
    nonisolated(unsafe) public static var resultPath = ""

    public static func openChannel() -> Int32 {
        let fd = open(resultPath, O_WRONLY | O_CLOEXEC)
        let high = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 1000)
        if high < 0 { return fd }
        close(fd)
        return high
    }

    /// Write all of `bytes` to a file descriptor.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { break }
            offset += written
        }
    }

    /// Send a framed message to the kernel (`kind length\npayload`).
    public static func send(_ kind: String, _ payload: String) {
        var bytes = Array("\(kind) \(payload.utf8.count)\n".utf8)
        bytes.append(contentsOf: payload.utf8)
        writeAll(channel, bytes)
    }

    public static func describe<T>(_ value: T) {
        send("result", String(reflecting: value))
        reportPlain(value)
    }

    /// Tell the kernel of a struct type whose description is its stored properties (no description
    /// or mirror of its own, not displayable), with their names: it reads later values of it from
    /// LLDB instead of asking Swift. The same for the structs among its properties.
    static func reportPlain(_ value: Any) {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .struct, !(value is CustomDebugStringConvertible),
              !(value is CustomStringConvertible), !(value is CustomReflectable),
              !(value is TextOutputStreamable), !(value is any JupyterDisplayable) else { return }
        let labels = mirror.children.map { $0.label ?? "" }
        send("plain", _typeName(type(of: value), qualified: true) + "\n" + labels.joined(separator: ","))
        for child in mirror.children { reportPlain(child.value) }
    }
    /// A value that says how it looks is the cell's result with all its MIME types.
    public static func describe<T: JupyterDisplayable>(_ value: T) { send("bundle", object(bundle(value))) }

    /// The value's MIME bundle, with text/plain (as Swift describes the value) when it has none.
    public static func bundle<T: JupyterDisplayable>(_ value: T) -> [String: String] {
        var bundle = value.jupyterMimeBundle()
        if bundle["text/plain"] == nil { bundle["text/plain"] = String(reflecting: value) }
        return bundle
    }

    /// A JSON object of strings.
    public static func object(_ fields: [String: String]) -> String {
        "{" + fields.map { json($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
    }
    public static func noop() {}

    /// Report the error a cell ended with (LLDB's REPL hands it back as a value of type Error,
    /// whose payload the kernel finds in its box): its type and its description. `box` is the
    /// address of the runtime's error box, which an `any Error` is one reference to.
    public static func describeThrown(box: UInt) {
        guard let pointer = UnsafeRawPointer(bitPattern: box) else { return }
        let error = unsafeBitCast(Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue(), to: Error.self)
        send("thrown", object(["type": "\(type(of: error))", "description": "\(error)"]))
    }

    /// Point standard input at a new pipe after the kernel ended the old one (no stdin allowed).
    public static func reopenStdin(_ path: String) {
        let fd = open(path, O_RDONLY)
        if fd >= 0 {
            dup2(fd, 0)
            close(fd)
        }
        clearerr(stdin)
    }

    /// Put back what a cell broke of the process's plumbing (the kernel found it so): standard
    /// output and error unbuffered on the kernel's pipes at `outPath` and `errPath` (empty: that
    /// fd is fine), and, with `reopenChannel`, the result channel on a fresh high fd (the old
    /// number is the cell's now). Flushed first: what the cell printed goes where it was printed
    /// to, now, not in a later cell. Returns the channel's fd.
    public static func restoreStreams(_ outPath: String, _ errPath: String, reopenChannel: Bool) -> Int32 {
        fflush(stdout)
        fflush(stderr)
        for (fd, path) in [(Int32(1), outPath), (Int32(2), errPath)] where !path.isEmpty {
            let opened = open(path, O_WRONLY)
            if opened >= 0 && opened != fd {
                dup2(opened, fd)
                close(opened)
            }
        }
        setvbuf(stdout, nil, _IONBF, 0)
        setvbuf(stderr, nil, _IONBF, 0)
        clearerr(stdout)
        clearerr(stderr)
        if reopenChannel { channel = openChannel() }
        return channel
    }

    /// Run async work to completion from synchronous top-level code (the kernel rewrites
    /// top-level `await` into this: LLDB's REPL cannot evaluate it directly).
    @discardableResult
    public static func blockOn<T>(_ body: @escaping () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = __SwiftKernelBox<T>()
        Task { box.value = await body(); finished(done) }
        wait(for: done)
        return box.value!
    }

    @discardableResult
    public static func blockOnThrowing<T>(_ body: @escaping () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = __SwiftKernelBox<T>()
        Task {
            do { box.value = try await body() } catch { box.error = error }
            finished(done)
        }
        wait(for: done)
        if let error = box.error { throw error }
        return box.value!
    }

    /// Say that the awaited work is done: signal `done`, and wake the main thread's queue, which
    /// the cell's thread runs while it waits (`wait(for:)`).
    static func finished(_ done: DispatchSemaphore) {
        done.signal()
        DispatchQueue.main.async {}
    }

    /// Wait for `done`, running the main queue's jobs meanwhile when this is the main thread.
    ///
    /// The main actor runs its jobs on the main dispatch queue, whose thread is the one the cell
    /// runs on: blocked in a semaphore, `await MainActor.run { }`, an awaited `@MainActor`
    /// function or a `Task { @MainActor in }` never ran. A program whose top-level code awaits
    /// runs them: so does a cell, as CoreFoundation's run loop does (libdispatch's hooks for it).
    static func wait(for done: DispatchSemaphore) {
        guard pthread_equal(pthread_self(), __swiftKernelMainThread) != 0, let queue = mainQueue else {
            done.wait()
            return
        }
        while done.wait(timeout: .now()) == .timedOut {
            var ready = pollfd(fd: queue.handle, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, -1) > 0 {
                var count: UInt64 = 0
                _ = read(queue.handle, &count, MemoryLayout<UInt64>.size)
            }
            queue.drain(nil)
        }
    }

    /// libdispatch's hooks for a run loop on the main thread: the eventfd it writes when the main
    /// queue has work, and the call that runs that work. Nil if the library has none.
    nonisolated(unsafe) static let mainQueue: (handle: Int32, drain: @convention(c) (UnsafeMutableRawPointer?) -> Void)? = {
        typealias Handle = @convention(c) () -> Int32
        typealias Drain = @convention(c) (UnsafeMutableRawPointer?) -> Void
        let library = dlopen("libdispatch.so", RTLD_NOW | RTLD_NOLOAD)
        guard let handle = dlsym(library, "_dispatch_get_main_queue_handle_4CF"),
              let drain = dlsym(library, "_dispatch_main_queue_callback_4CF") else { return nil }
        return (unsafeBitCast(handle, to: Handle.self)(), unsafeBitCast(drain, to: Drain.self))
    }()

    /// Quote a string as JSON.
    public static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    public static func base64<B: Sequence>(_ bytes: B) -> String where B.Element == UInt8 {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index < input.count {
            let b0 = input[index]
            let b1 = index + 1 < input.count ? input[index + 1] : 0
            let b2 = index + 2 < input.count ? input[index + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(index + 1 < input.count ? table[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < input.count ? table[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Send a display message in-band on stdout, so it keeps its place among the printed lines.
    public static func emit(_ message: String) {
        writeAll(1, Array(("\u{1B}]5151;" + message + "\u{07}").utf8))
    }
}

/// The kernel's stop flag: a page it shares with this process (`setUp`'s `stopPath` is a memfd the
/// kernel holds open; empty in sessions without a kernel). Word 0 is set while the kernel asks the
/// running cell to stop; word 1 is set here when the code stopped at a safe point; word 2 is set by
/// the kernel's LLDB host while it stops the other threads that run an interrupted cell's code;
/// words 4-5 hold the address of the main thread's libdispatch state (`setUp`).
nonisolated(unsafe) public var __swiftKernelStopFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1024)
/// The thread that runs the cells (the REPL's main thread), set by `setUp`.
nonisolated(unsafe) public var __swiftKernelMainThread = pthread_self()

/// A safe point: the kernel puts one at the start of every loop body in cells (and of each cell
/// where LLDB cannot cancel a cell before it runs), where no mutation is half done. Asked to
/// stop, the cell's own thread stops here (SIGINT, which the debugger takes and never passes on);
/// other threads run on, unless the LLDB host is stopping those that run the interrupted cell's
/// code (a concurrentPerform's workers): then they stop here too, and the host keeps them stopped.
public func __swiftKernelSafePoint() {
    if __swiftKernelStopFlag.pointee != 0 {
        if pthread_equal(pthread_self(), __swiftKernelMainThread) != 0 {
            __swiftKernelStopFlag[1] = 1
            raise(SIGINT)
        } else if __swiftKernelStopFlag[2] != 0 {
            __swiftKernelStopThisThread()
        }
    }
}

/// Stops a thread other than the cell's at its safe point. libdispatch's workers block SIGINT, so
/// it is let through on this thread first (the host then holds the thread for good). A function of
/// its own: the safe point's frame stays as small as it was, which LLDB's unwinder steps through.
public func __swiftKernelStopThisThread() {
    var interrupt = sigset_t()
    sigemptyset(&interrupt)
    sigaddset(&interrupt, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
    raise(SIGINT)
}

extension __SwiftKernel {
    /// Set up a new Swift process for the kernel, on the thread that runs the cells, before the
    /// first cell (prelude.swift). Here, compiled once with the library, rather than in the
    /// prelude's expression: LLDB took about 0.2 s of every start to compile these lines.
    public static func setUp(resultPath: String, stopPath: String) {
        // Unbuffered stdout: output reaches the pipe as it is printed, and nothing is left in a
        // buffer when a cell ends (a partial line would otherwise surface in the next cell).
        setvbuf(stdout, nil, _IONBF, 0)

        // An interrupt unwinds the cell's stack; an exclusivity record left on it would corrupt
        // the runtime's access list and crash the next cell that touches the same variable.
        // (dlsym with RTLD_DEFAULT finds nothing when called from JIT code: ask the library itself.)
        if let flag = dlsym(dlopen("libswiftCore.so", RTLD_NOW | RTLD_NOLOAD), "_swift_disableExclusivityChecking") {
            flag.assumingMemoryBound(to: Bool.self).pointee = true
        }

        // If the debug server dies (the kernel was killed), this process dies with it instead of
        // running on detached. prctl is variadic, so Swift calls it through a fixed-argument pointer.
        if let prctl = dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "prctl") {
            typealias Prctl = @convention(c) (Int32, UInt) -> Int32
            _ = unsafeBitCast(prctl, to: Prctl.self)(1, 9)  // PR_SET_PDEATHSIG, SIGKILL
        }

        self.resultPath = resultPath
        _ = channel  // opened now, before any cell can take the fd it would get

        // LLDB reports exit(9) and a SIGKILL alike, as exit status 9: only exit() says so first.
        // (on_exit, not atexit: glibc's atexit is a static stub that JIT code cannot link to, and
        // this file is compiled in LLDB when the library cannot be built.)
        on_exit({ status, _ in __SwiftKernel.send("exit", "\(status)") }, nil)

        let fd = stopPath.isEmpty ? -1 : open(stopPath, O_RDWR)
        let page = mmap(nil, 4096, PROT_READ | PROT_WRITE, fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0)
        if fd >= 0 { close(fd) }
        if page != nil && page != UnsafeMutableRawPointer(bitPattern: -1) {
            __swiftKernelStopFlag = page!.assumingMemoryBound(to: Int32.self)
        }
        __swiftKernelMainThread = pthread_self()
        UnsafeMutableRawPointer(__swiftKernelStopFlag + 4).storeBytes(of: dispatchState(), as: UInt.self)
    }

    /// The address of this thread's libdispatch state. libdispatch keeps per-thread state (its
    /// first thread-local, 96 bytes) that links records on the stack of a running dispatch call:
    /// concurrentPerform's. An interrupt that unwinds the main thread out of such a call leaves
    /// them pointing into the unwound stack, and the next concurrentPerform crashes; the LLDB host
    /// puts the state back as it was before the cell. (dl_iterate_phdr through dlsym, like prctl:
    /// naming it makes LLDB look for a libdl.so that glibc no longer ships; struct dl_phdr_info
    /// read by offset: dlpi_name at 8, dlpi_tls_data at 56.)
    static func dispatchState() -> UInt {
        guard let iterate = dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "dl_iterate_phdr") else { return 0 }
        typealias Visit = @convention(c) (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32
        typealias Iterate = @convention(c) (Visit, UnsafeMutableRawPointer?) -> Int32
        var state: UInt = 0
        _ = unsafeBitCast(iterate, to: Iterate.self)({ info, _, found in
            guard let info = info, let name = info.load(fromByteOffset: 8, as: UnsafePointer<CChar>?.self),
                  String(cString: name).hasSuffix("/libdispatch.so") else { return 0 }
            found!.storeBytes(of: info.load(fromByteOffset: 56, as: UInt.self), as: UInt.self)
            return 1
        }, &state)
        return state
    }
}

/// A type that says how Jupyter shows its values: MIME type -> payload (base64 for images, JSON
/// text for application/json and the `+json` types such as Vega-Lite). A value of such a type is
/// shown with all its MIME types as a cell's result and by `Jupyter.display(value)`. A type with
/// this exact method is shown the same way without the conformance (the kernel recognises the
/// method), so a package can adopt it without depending on anything of the kernel's.
public protocol JupyterDisplayable {
    func jupyterMimeBundle() -> [String: String]
}

/// Rich output from Swift code: `Jupyter.display(html: "<b>hi</b>")`, `Jupyter.display(png: data)`.
public enum Jupyter {
    /// Show a bundle of MIME type to text (JSON for application/json, base64 for images).
    public static func display(_ bundle: [String: String], id: String? = nil, update: Bool = false) {
        let idField = id.map { ",\"id\":\(__SwiftKernel.json($0))" } ?? ""
        __SwiftKernel.emit("{\"type\":\"display\",\"update\":\(update),\"data\":\(__SwiftKernel.object(bundle))\(idField)}")
    }
    /// Show a value the way it says it looks (`JupyterDisplayable`).
    public static func display<T: JupyterDisplayable>(_ value: T, id: String? = nil, update: Bool = false) {
        display(__SwiftKernel.bundle(value), id: id, update: update)
    }
    /// Show a Vega-Lite chart from its full specification (JSON text), which JupyterLab draws.
    public static func display(vegaLite spec: String, id: String? = nil, update: Bool = false) {
        display(["application/vnd.vegalite.v5+json": spec, "text/plain": "<Vega-Lite chart>"], id: id, update: update)
    }
    public static func display(html: String, id: String? = nil) { display(["text/html": html], id: id) }
    public static func display(markdown: String, id: String? = nil) { display(["text/markdown": markdown], id: id) }
    public static func display(svg: String, id: String? = nil) { display(["image/svg+xml": svg], id: id) }
    public static func display(latex: String, id: String? = nil) { display(["text/latex": latex], id: id) }
    public static func display(text: String, id: String? = nil) { display(["text/plain": text], id: id) }
    public static func display(json: String, id: String? = nil) { display(["application/json": json], id: id) }
    public static func display<B: Sequence>(png: B, id: String? = nil) where B.Element == UInt8 {
        display(["image/png": __SwiftKernel.base64(png)], id: id)
    }
    public static func display<B: Sequence>(jpeg: B, id: String? = nil) where B.Element == UInt8 {
        display(["image/jpeg": __SwiftKernel.base64(jpeg)], id: id)
    }
    /// Replace what an earlier `display(..., id:)` showed.
    public static func updateDisplay(id: String, html: String) { display(["text/html": html], id: id, update: true) }
    public static func updateDisplay(id: String, markdown: String) { display(["text/markdown": markdown], id: id, update: true) }
    public static func updateDisplay(id: String, text: String) { display(["text/plain": text], id: id, update: true) }
    public static func updateDisplay(id: String, _ bundle: [String: String]) { display(bundle, id: id, update: true) }
    public static func updateDisplay<T: JupyterDisplayable>(id: String, _ value: T) { display(value, id: id, update: true) }
    /// Clear the cell's output; with `wait`, only when the next output arrives.
    public static func clearOutput(wait: Bool = false) {
        __SwiftKernel.emit("{\"type\":\"clear\",\"wait\":\(wait)}")
    }
}
