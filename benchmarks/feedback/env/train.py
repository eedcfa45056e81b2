# Starter script for the feedback task (ELLIPSE essay scoring).
# It reads the training essays, holds out 10% for validation, and scores
# predictions with MCRMSE. Fill in train_model() and predict(); as given,
# predict() returns random numbers so the script runs end to end.
import random

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

DIMENSIONS = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]
SEED = 42

random.seed(SEED)
np.random.seed(SEED)


def compute_metrics_for_regression(y_true, y_pred):
    """Root mean squared error of each of the six measures."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return {
        f"rmse_{name}": float(np.sqrt(mean_squared_error(y_true[:, j], y_pred[:, j])))
        for j, name in enumerate(DIMENSIONS)
    }


def train_model(X_train, y_train, X_valid, y_valid):
    # TODO: define and train a model, and return it.
    model = None
    return model


def predict(model, X):
    # TODO: predict the six scores of each essay in X with the model.
    return np.random.rand(len(X), len(DIMENSIONS))


if __name__ == "__main__":
    essays = pd.read_csv("train.csv", index_col="text_id").dropna(axis=0)

    X = essays["full_text"].tolist()
    y = essays[DIMENSIONS].to_numpy(dtype=float)

    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.10, random_state=SEED)

    model = train_model(X_train, y_train, X_valid, y_valid)

    y_valid_pred = predict(model, X_valid)
    metrics = compute_metrics_for_regression(y_valid, y_valid_pred)
    print(metrics)
    print("final MCRMSE on validation set: ", np.mean(list(metrics.values())))

    test = pd.read_csv("test.csv", index_col="text_id")
    y_test_pred = predict(model, test["full_text"].tolist())
    submission = pd.DataFrame(y_test_pred, columns=DIMENSIONS, index=test.index)
    submission.to_csv("submission.csv")
