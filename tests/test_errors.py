"""distill.errors: a UserError is a mistake the user can fix, so a script prints it as one line and exits
with status 2; any other exception is a bug, and keeps its traceback."""

from __future__ import annotations

import pytest

import distill
from distill import cli
from distill.errors import UserError


def test_a_user_error_ends_a_script_in_one_line_and_exit_status_2(capsys) -> None:  # type: ignore[no-untyped-def]
    def main() -> None:
        raise UserError("There is no folder outputs/teacher. Train one with scripts/train_teacher.py.")

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == "error: There is no folder outputs/teacher. Train one with scripts/train_teacher.py.\n"
    )
    assert captured.out == ""


def test_any_other_error_is_a_bug_and_is_not_hidden() -> None:
    def main() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        cli.run(main)


def test_user_error_is_the_packages_one_value_error() -> None:
    assert distill.UserError is UserError and issubclass(UserError, ValueError)
