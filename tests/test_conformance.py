"""Run jupyter_kernel_test's protocol conformance checks against the installed Swift kernelspec.

Completion is tested in depth in test_completion.py; the one sample here checks the protocol shape.
The pager check is removed: the kernel sends no pager payloads. The error sample is a compile error: the
check wants the error as the only output, and a runtime trap also writes the runtime's own message
to stderr (tested in test_execution.py).
"""

from __future__ import annotations

import jupyter_kernel_test
import pytest


@pytest.mark.lldb
@pytest.mark.timeout(120)
class SwiftKernelTests(jupyter_kernel_test.KernelTests):
    """The Swift kernel speaks the Jupyter protocol as jupyter_kernel_test expects."""

    kernel_name = "swift"
    language_name = "swift"
    file_extension = ".swift"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'import Glibc\nfputs("oops\\n", stderr)'
    code_generate_error = 'let wrong: Int = "not a number"'
    code_clear_output = 'print("\\u{1B}[2J", terminator: "")'

    code_execute_result = [  # noqa: RUF012 - the base class declares it as a plain class attribute
        {"code": "6 * 7", "result": "42"},
        {"code": '"a" + "bc"', "result": '"abc"'},
        {"code": "[1, 2, 3].map { $0 * 2 }", "result": "[2, 4, 6]"},
        {"code": "3.14", "result": "3.14"},
        {"code": "3 > 2", "result": "true"},
        {"code": "Optional(5)", "result": "Optional(5)"},
    ]

    code_display_data = [  # noqa: RUF012 - as above
        {"code": 'Jupyter.display(html: "<b>hi</b>")', "mime": "text/html"},
        {"code": 'Jupyter.display(markdown: "# hi")', "mime": "text/markdown"},
    ]
    completion_samples = [{"text": "Int.bitWid", "matches": {"bitWidth"}}]  # noqa: RUF012 - as above
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6 * *"
    code_inspect_sample = "print"

    # The kernel sends no pager payloads (help is %help, printed): this check does not apply.
    test_pager = None  # type: ignore[assignment]

    complete_code_samples = ["let x = 1", 'print("a{")', "func f() {\n}"]  # noqa: RUF012 - as above
    incomplete_code_samples = ["func f() {", "let x = 1 +"]  # noqa: RUF012 - as above
    invalid_code_samples = ["}"]  # noqa: RUF012 - as above
