"""Runs README.md: every ```python block, in order, in one namespace (the tour must not rot).

Blocks fenced as ```bash or ```text are shown, not run. The blocks run in a scratch folder (the
README writes `preview.png` and a search directory relative to the working directory). A block
that raises fails the test with its number, its first line in the README and its text.
"""

import contextlib
import io
import pathlib
import re
import traceback

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

# The two set-up commands the CI runs verbatim (.ci/run runs the second one).
SEARCH_COMMAND = "pip install -e . && keras-reg search --out keras_reg_out"
TEST_COMMAND = "pip install -e \".[test]\" && python -m pytest -n 2"

_FENCE = re.compile(r"^```(\S*)[ \t]*$")


def fenced_blocks(text):
    """`(language, first line number of the code, code)` for every fenced block of `text`."""
    blocks, language, start, lines = [], None, None, []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if language is None:
            if match:
                language, start, lines = match.group(1), number + 1, []
        elif line.strip() == "```":
            blocks.append((language, start, "\n".join(lines) + "\n"))
            language = None
        else:
            lines.append(line)
    assert language is None, f"README.md: the block opened at line {start - 1} is never closed"
    return blocks


def python_blocks():
    return [(line, code) for language, line, code in fenced_blocks(README.read_text("utf-8"))
            if language == "python"]


def test_every_fence_is_python_bash_or_text():
    languages = {language for language, _, _ in fenced_blocks(README.read_text("utf-8"))}
    assert languages <= {"python", "bash", "text"}, languages


def test_first_bash_block_starts_with_the_setup_commands():
    blocks = fenced_blocks(README.read_text("utf-8"))
    assert blocks and blocks[0][0] == "bash", "README.md must open with a ```bash block"
    first, second = blocks[0][2].splitlines()[:2]
    assert first.split("#")[0].strip() == SEARCH_COMMAND, first
    assert second.split("#")[0].strip() == TEST_COMMAND, second


def test_every_module_section_has_a_runnable_example():
    text = README.read_text("utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    modules = {}
    for section in sections:
        heading = section.splitlines()[0]
        match = re.search(r"\(`keras_reg\.(\w+)`\)", heading)
        if match:
            modules[match.group(1)] = "\n```python\n" in section
    import keras_reg

    assert set(modules) == set(keras_reg.__all__) - {"__version__"}, sorted(modules)
    assert all(modules.values()), [name for name, has in modules.items() if not has]


@pytest.mark.slow  # ~90 s on 2 cores: the tour trains a few small models and two tiny searches
def test_python_blocks_run_in_order(tmp_path, monkeypatch):
    blocks = python_blocks()
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for index, (line, code) in enumerate(blocks, start=1):
        output, error = io.StringIO(), None
        try:
            compiled = compile(code, f"README.md:block{index}", "exec")
            with contextlib.redirect_stdout(output):
                exec(compiled, namespace)  # noqa: S102 -- the README's own examples
        except Exception:  # noqa: BLE001 -- reported with the block's number and text
            error = traceback.format_exc()
        if error is not None:
            pytest.fail(
                f"README.md python block {index} of {len(blocks)} (line {line}) raised:\n\n"
                f"{code}\n{error}\nIts output before the error:\n{output.getvalue()}",
                pytrace=False,
            )
    assert (tmp_path / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text("utf-8").splitlines()
    assert TEST_COMMAND.split(" && ")[1] in [line.strip() for line in ci]
