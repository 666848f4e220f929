// Run once in every Swift process before the first cell. @RESULT_PATH@ is replaced by the kernel.
import Glibc
import Dispatch

// Unbuffered stdout: output reaches the pipe as it is printed, and nothing is left in a buffer
// when a cell ends (a partial line would otherwise surface in the next cell).
setvbuf(stdout, nil, _IONBF, 0)

// An interrupt unwinds the cell's stack; an exclusivity record left on it would corrupt the
// runtime's access list and crash the next cell that touches the same variable.
// (dlsym with RTLD_DEFAULT finds nothing when called from JIT code: ask the library itself.)
if let flag = dlsym(dlopen("libswiftCore.so", RTLD_NOW | RTLD_NOLOAD), "_swift_disableExclusivityChecking") {
    flag.assumingMemoryBound(to: Bool.self).pointee = true
}

// If the debug server dies (the kernel was killed), this process dies with it instead of running
// on detached. prctl is variadic, so Swift calls it through a fixed-argument pointer.
if let prctl = dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "prctl") {
    typealias Prctl = @convention(c) (Int32, UInt) -> Int32
    _ = unsafeBitCast(prctl, to: Prctl.self)(1, 9)  // PR_SET_PDEATHSIG, SIGKILL
}

__SwiftKernel.resultPath = "@RESULT_PATH@"
_ = __SwiftKernel.channel  // opened now, before any cell can take the fd it would get

// LLDB reports exit(9) and a SIGKILL alike, as exit status 9: only exit() says so first.
// (on_exit, not atexit: glibc's atexit is a static stub that JIT code cannot link to.)
on_exit({ status, _ in __SwiftKernel.send("exit", "\(status)") }, nil)

// The kernel's stop flag: a page it shares with this process (@STOP_PATH@ is a memfd the kernel
// holds open; empty in sessions without a kernel). Word 0 is set while the kernel asks the running
// cell to stop; word 1 is set here when the code stopped at a safe point; word 2 is set by the
// kernel's LLDB host while it stops the other threads that run an interrupted cell's code; words
// 4-5 hold the address of the main thread's libdispatch state (below).
let __swiftKernelStopFlag: UnsafeMutablePointer<Int32> = {
    let path = "@STOP_PATH@"
    let fd = path.isEmpty ? -1 : open(path, O_RDWR)
    let page = mmap(nil, 4096, PROT_READ | PROT_WRITE, fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0)
    if fd >= 0 { close(fd) }
    let usable = page != nil && page != UnsafeMutableRawPointer(bitPattern: -1)
    return usable ? page!.assumingMemoryBound(to: Int32.self) : UnsafeMutablePointer<Int32>.allocate(capacity: 1024)
}()
let __swiftKernelMainThread = pthread_self()

/// A safe point: the kernel puts one at the start of every loop body in cells, and of each cell,
/// where no mutation is half done. Asked to stop, the cell's own thread stops here (SIGINT, which
/// the debugger takes and never passes on); other threads run on, unless the LLDB host is
/// stopping those that run the interrupted cell's code (a concurrentPerform's workers): then they
/// stop here too, and the host keeps them stopped.
func __swiftKernelSafePoint() {
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
func __swiftKernelStopThisThread() {
    var interrupt = sigset_t()
    sigemptyset(&interrupt)
    sigaddset(&interrupt, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
    raise(SIGINT)
}

// libdispatch keeps per-thread state (its first thread-local, 96 bytes) that links records on the
// stack of a running dispatch call: concurrentPerform's. An interrupt that unwinds the main thread
// out of such a call leaves them pointing into the unwound stack, and the next concurrentPerform
// crashes; the LLDB host puts the state back as it was before the cell. Here: where it is.
// (dl_iterate_phdr through dlsym, like prctl: naming it makes LLDB look for a libdl.so that glibc
// no longer ships; struct dl_phdr_info read by offset: dlpi_name at 8, dlpi_tls_data at 56.)
if let iterate = dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "dl_iterate_phdr") {
    typealias Visit = @convention(c) (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32
    typealias Iterate = @convention(c) (Visit, UnsafeMutableRawPointer?) -> Int32
    var state: UInt = 0
    _ = unsafeBitCast(iterate, to: Iterate.self)({ info, _, found in
        guard let info = info, let name = info.load(fromByteOffset: 8, as: UnsafePointer<CChar>?.self),
              String(cString: name).hasSuffix("/libdispatch.so") else { return 0 }
        found!.storeBytes(of: info.load(fromByteOffset: 56, as: UInt.self), as: UInt.self)
        return 1
    }, &state)
    UnsafeMutableRawPointer(__swiftKernelStopFlag + 4).storeBytes(of: state, as: UInt.self)
}
