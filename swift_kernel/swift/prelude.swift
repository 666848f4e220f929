// Run once in every Swift process before the first cell. @RESULT_PATH@ and @STOP_PATH@ are
// replaced by the kernel. The work is the library's (`__SwiftKernel.setUp`, SwiftKernelPrelude.swift);
// these imports make the C library and Dispatch visible to every cell, as they always were.
import Glibc
import Dispatch

__SwiftKernel.setUp(resultPath: "@RESULT_PATH@", stopPath: "@STOP_PATH@")
