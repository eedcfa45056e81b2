# Starter script for the Parkinson's progression task.
# It trains one random forest per UPDRS part that forecasts the scores at
# +0/+6/+12/+24 months from the visit month alone (proteins and peptides are
# not used yet), reports a grouped cross-validation SMAPE, and then predicts
# the test visits through the time-series API, which writes submission.csv.
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import make_scorer
from sklearn.model_selection import GroupKFold, cross_val_score

from public_timeseries_testing_util import MockApi

TARGETS = ["updrs_1", "updrs_2", "updrs_3", "updrs_4"]
HORIZONS = [0, 6, 12, 24]


def smapep1(y_true, y_pred):
    """SMAPE of y+1 (a nonnegative float, smaller is better; 100 = 100% error).

    Entries where y_true is missing are ignored.
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    keep = np.isfinite(y_true)
    y_true, y_pred = y_true[keep], y_pred[keep]
    if (y_true < 0).any():
        raise ValueError("y_true < 0")
    if (y_pred < 0).any():
        raise ValueError("y_pred < 0")
    denominator = (y_true + y_pred) / 2 + 1
    return float(np.mean(np.abs(y_pred - y_true) / denominator) * 100)


# cross_val_score maximises, so the scorer returns minus the SMAPE.
smapep1_scorer = make_scorer(smapep1, greater_is_better=False)


def forecast_rows(visits, target):
    """One row per visit whose patient also has ratings of `target` at +0,
    +6, +12 and +24 months: [month, patient_id, rating+0, +6, +12, +24]."""
    rows = []
    for patient, own in visits.groupby("patient_id", sort=False):
        by_month = own.drop_duplicates("visit_month").set_index("visit_month")[target]
        for month in own["visit_month"]:
            ahead = [month + h for h in HORIZONS]
            if all(m in by_month.index for m in ahead):
                rows.append([month, patient] + [by_month[m] for m in ahead])
    columns = ["month", "patient_id"] + [f"{target}+{h}" for h in HORIZONS]
    return pd.DataFrame(rows, columns=columns).dropna()


def get_predictions(test_visits, models):
    """prediction_id and rating for every test visit, part and horizon."""
    visits = test_visits[["visit_id", "visit_month"]].drop_duplicates()
    months = visits["visit_month"].to_numpy().reshape(-1, 1)
    frames = []
    for target in TARGETS:
        forecast = models[target].predict(months)
        for j, h in enumerate(HORIZONS):
            frames.append(pd.DataFrame({
                "prediction_id": visits["visit_id"] + f"_{target}_plus_{h}_months",
                "rating": forecast[:, j],
            }))
    return pd.concat(frames).drop_duplicates(subset=["prediction_id"])


if __name__ == "__main__":
    proteins = pd.read_csv("train_proteins.csv")
    clinical = pd.read_csv("train_clinical_data.csv")
    peptides = pd.read_csv("train_peptides.csv")
    supplemental = pd.read_csv("supplemental_clinical_data.csv")
    visits = pd.concat([clinical, supplemental])

    # TODO: clean the data and engineer features; only the month is used now.
    training = {target: forecast_rows(visits, target) for target in TARGETS}

    models = {}
    overall = []
    for target in TARGETS:
        X = training[target]["month"].to_numpy().reshape(-1, 1)
        y = training[target].iloc[:, 2:6]
        models[target] = RandomForestRegressor().fit(X, y)

        print("Cross-validation scores")
        cvs = cross_val_score(RandomForestRegressor(), X=X, y=y,
                              groups=training[target]["patient_id"],
                              scoring=smapep1_scorer, cv=GroupKFold(n_splits=8),
                              error_score="raise")
        print([f"{target}:"], -cvs.round(1), -cvs.mean().round(1))
        overall.append(-cvs)
    print(f"Overall cv score of the group model: {np.array(overall).mean():.2f}")

    # Predict the test visits through the API; it writes submission.csv.
    env = MockApi()
    for test_visits, test_peptides, test_proteins, sample_submission in env.iter_test():
        predictions = get_predictions(test_visits, models).round(0)
        rating = dict(zip(predictions["prediction_id"], predictions["rating"]))
        sample_submission["rating"] = sample_submission["prediction_id"].map(rating).fillna(0)
        env.predict(sample_submission)
