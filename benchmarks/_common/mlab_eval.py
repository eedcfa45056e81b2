"""Helpers shared by every task's eval.py, and the answer file name that
prepare.py writes and eval.py reads.

What it is for: the parts of scoring that must behave the same in every
task: the error a submission that cannot be scored raises
(`SubmissionError`), finding and reading the hidden answers, reading
submission.csv with the checks tasks share (exact columns, whole-number ids,
finite numbers, no repeated, missing or unknown id, a hint for the usual
mistakes), matching rows by id rather than position, and the metrics that
several tasks use.

What it is not for: anything about one task (its columns, its metric, how it
spells a label); that stays in the task's own eval.py.

mlab's grader sandbox shows this folder read-only beside the task's script/
folder. An eval.py imports it the way prepare.py imports mlab_prepare:

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
    import mlab_eval as me

Importing it needs only the standard library (prepare.py reads
`ANSWER_FILE` from it before it may import pandas); numpy and pandas are
imported by the functions that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

# The hidden answers: script/<ANSWER_FILE>, written by prepare.py.
ANSWER_FILE = "answer.csv"
# What an agent's script writes in its workspace, unless task.toml says otherwise.
SUBMISSION_FILE = "submission.csv"

_INDEX_HINT = (" (an unnamed first column usually means it was written with index=True; "
               "use index=False)")


class SubmissionError(ValueError):
    """The submission cannot be scored; the message says why.

    A ValueError, so callers that catch ValueError keep working."""


def examples(values: Iterable, limit: int = 5) -> str:
    """The first few values, repr'd, and how many there are in all."""
    # numpy scalars print as plain numbers (1348, not np.int64(1348)).
    values = [v.item() if hasattr(v, "item") and callable(v.item) else v for v in values]
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


# ---------------------------------------------------------------- answers

def answer_path(script_dir) -> Path:
    return Path(script_dir) / ANSWER_FILE


def read_answer(script_dir, **read_csv_kwargs):
    """script/answer.csv as a DataFrame. Missing, it raises
    FileNotFoundError naming `mlab prepare <task>` (the task is the folder
    above script/)."""
    import pandas as pd

    path = answer_path(script_dir)
    if not path.is_file():
        task = Path(script_dir).resolve().parent.name
        raise FileNotFoundError(
            f"{path} not found: the task is not prepared; run `mlab prepare {task}`")
    return pd.read_csv(path, **read_csv_kwargs)


# ------------------------------------------------------------- submission

def open_submission(folder, name: str = SUBMISSION_FILE, hint: str = "the script must write it",
                    **read_csv_kwargs):
    """`folder`/`name` read with pandas.read_csv(**read_csv_kwargs); a
    missing or unreadable file is a SubmissionError. No other check."""
    import pandas as pd

    path = Path(folder) / name
    if not path.is_file():
        raise SubmissionError(f"{name} not found in {folder}; {hint}")
    try:
        return pd.read_csv(path, **read_csv_kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, IndexError) as err:
        raise SubmissionError(f"{name} is not a readable CSV file: {err}") from None


def read_submission(folder, columns: Sequence[str], id_column: str, numeric: Iterable[str] = (),
                    name: str = SUBMISSION_FILE):
    """The strict reader: `folder`/`name` with exactly `columns` (in any
    order), `id_column` holding whole numbers, each once (made int64), and
    the `numeric` columns holding finite numbers (made float64). Other
    columns stay text. Anything else is a
    SubmissionError that names the column and shows offending values."""
    import numpy as np
    import pandas as pd

    columns = list(columns)
    sub = open_submission(folder, name, hint=f"write it with the columns {columns}",
                          dtype=str, keep_default_na=False)
    sub.columns = [str(c).strip() for c in sub.columns]
    missing = [c for c in columns if c not in sub.columns]
    extra = [c for c in sub.columns if c not in columns]
    if missing or extra:
        hint = _INDEX_HINT if any(c.startswith("Unnamed") for c in extra) else ""
        raise SubmissionError(f"{name} must have exactly the columns {columns}; "
                              f"missing {missing}, unexpected {extra}{hint}")
    ids = pd.to_numeric(sub[id_column].str.strip(), errors="coerce")
    bad = sub[id_column][ids.isna() | (ids != ids.round())]
    if len(bad):
        raise SubmissionError(f"{name}: column {id_column} must hold whole numbers; found {examples(bad)}")
    sub[id_column] = ids.astype("int64")
    repeated = sub[id_column][sub[id_column].duplicated()].unique()
    if len(repeated):
        raise SubmissionError(f"{name}: each {id_column} must appear once; repeated: {examples(repeated)}")
    for column in numeric:
        values = pd.to_numeric(sub[column].str.strip(), errors="coerce")
        not_finite = values.isna() | ~np.isfinite(values.fillna(0))
        if not_finite.any():
            raise SubmissionError(f"{name}: column {column} must hold finite numbers; "
                                  f"found {examples(sub[column][not_finite])}")
        sub[column] = values.astype("float64")
    return sub


def match_answers(sub, answers, id_column: str, name: str = SUBMISSION_FILE):
    """The rows of `sub` (from read_submission) in the order of `answers`;
    a SubmissionError when the ids differ in either direction."""
    expected = set(answers[id_column])
    given = set(sub[id_column])
    absent = sorted(expected - given)
    if absent:
        raise SubmissionError(f"{name} lacks {len(absent)} of the {len(expected)} test {id_column}s, "
                              f"e.g. {examples(absent)}")
    unknown = sorted(given - expected)
    if unknown:
        raise SubmissionError(f"{name} has {id_column}s that are not in test.csv: {examples(unknown)}")
    return answers[[id_column]].merge(sub, on=id_column, how="left", validate="one_to_one")


def align(submission, answer, key: str, columns: Sequence[str], name: str = SUBMISSION_FILE):
    """The lenient matcher: the answer rows joined with `submission`'s `key`
    and `columns` on `key` compared as text (answer columns of the same name
    get the suffix `_true`); extra submission columns are ignored. Every
    answer id must appear exactly once and no other id may appear."""
    missing_cols = [c for c in [key, *columns] if c not in submission.columns]
    if missing_cols:
        raise SubmissionError(f"{name} lacks column(s) {missing_cols}; it has {list(submission.columns)}")
    sub = submission[[key, *columns]].copy()
    sub[key] = sub[key].astype(str)
    dup = sub[key][sub[key].duplicated()]
    if len(dup):
        raise SubmissionError(f"{name} repeats {key} {dup.iloc[0]!r} ({len(dup)} duplicates)")
    ans = answer.copy()
    ans[key] = ans[key].astype(str)
    extra = sorted(set(sub[key]) - set(ans[key]))
    if extra:
        raise SubmissionError(f"{name} has {len(extra)} {key}(s) not in the test set, e.g. {extra[0]!r}")
    merged = ans.merge(sub, on=key, how="left", suffixes=("_true", ""), indicator=True)
    absent = merged[merged["_merge"] == "left_only"][key]
    if len(absent):
        raise SubmissionError(f"{name} misses {len(absent)} of {len(ans)} test {key}s, "
                              f"e.g. {absent.iloc[0]!r}")
    return merged.drop(columns=["_merge"])


def read_class_scores(path, n_classes: int):
    """A submission whose first column is the id and whose other columns
    are named 0..n_classes-1 (one score per class), as a frame indexed by
    the id as text ("12", not "12.0") with integer columns 0..n-1."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    frame = open_submission(path.parent, path.name, index_col=0)
    try:
        columns = sorted(int(float(c)) for c in frame.columns)
    except ValueError:
        raise SubmissionError(f"{path.name} must have class columns 0..{n_classes - 1} after the id "
                              f"column; it has {list(frame.columns)}") from None
    if columns != list(range(n_classes)):
        raise SubmissionError(f"{path.name} must have exactly the class columns 0..{n_classes - 1}; "
                              f"it has {list(frame.columns)}")
    frame.columns = [int(float(c)) for c in frame.columns]
    frame = frame[list(range(n_classes))].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(frame.to_numpy(dtype=float)).all():
        raise SubmissionError(f"{path.name} has a class score that is not a finite number")
    frame.index = frame.index.map(lambda v: str(int(v)) if isinstance(v, (int, float, np.number))
                                  and float(v).is_integer() else str(v))
    if frame.index.duplicated().any():
        raise SubmissionError(f"{path.name} repeats id {frame.index[frame.index.duplicated()][0]!r}")
    return frame


# ---------------------------------------------------------------- metrics

def accuracy(y_true, y_pred) -> float:
    """Share of positions where the two agree."""
    import numpy as np

    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def argmax_accuracy(labels, scores) -> float:
    """Share of rows whose largest score sits at the true label's column."""
    import numpy as np

    scores = np.asarray(scores, dtype=float)
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def mean_absolute_error(y_true, y_pred) -> float:
    import numpy as np

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return float(np.mean(np.abs(y_true - y_pred)))

