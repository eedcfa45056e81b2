"""A local stand-in for the competition's time-series API.

MockApi serves the files in example_test_files/ one visit month at a time,
in the order the months first appear in test.csv. After each month you must
call predict() with that month's sample_submission (ratings filled in) before
asking for the next month. When all months are served, the predictions are
written to submission.csv.
"""

from typing import Iterator, Sequence, Tuple

import pandas as pd


class MockApi:
    def __init__(self, folder: str = "example_test_files"):
        self.input_paths: Sequence[str] = [
            f"{folder}/test.csv",
            f"{folder}/test_peptides.csv",
            f"{folder}/test_proteins.csv",
            f"{folder}/sample_submission.csv",
        ]
        self.group_id_column = "visit_month"
        self._status = "initialized"
        self.predictions = []

    def iter_test(self) -> Iterator[Tuple[pd.DataFrame, ...]]:
        """Yields (test, test_peptides, test_proteins, sample_submission) for
        each visit month; each frame holds only that month's rows."""
        if self._status != "initialized":
            raise RuntimeError("iter_test() can run only once, like the real API")
        frames = [pd.read_csv(path, low_memory=False) for path in self.input_paths]
        months = frames[0][self.group_id_column].drop_duplicates().tolist()
        for month in months:
            self._status = "prediction_needed"
            yield tuple(frame[frame[self.group_id_column] == month].reset_index(drop=True)
                        for frame in frames)
            if self._status != "prediction_received":
                raise RuntimeError("call predict() with this month's predictions before "
                                   "asking iter_test() for the next month")
        pd.concat(self.predictions).to_csv("submission.csv", index=False)
        self._status = "finished"

    def predict(self, user_predictions: pd.DataFrame) -> None:
        """Registers the predictions for the month just served."""
        if self._status == "finished":
            raise RuntimeError("all months are already predicted")
        if self._status != "prediction_needed":
            raise RuntimeError("get the next month from iter_test() first")
        if not isinstance(user_predictions, pd.DataFrame):
            raise TypeError("predict() takes a pandas DataFrame")
        self.predictions.append(user_predictions.copy())
        self._status = "prediction_received"


def make_env() -> MockApi:
    return MockApi()
