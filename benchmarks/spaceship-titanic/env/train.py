# Starter script for the spaceship-titanic task.
# It loads train.csv, holds out a validation part, splits the Cabin column into
# deck/number/side and one-hot encodes a few categorical columns. Your job:
# train a model in the marked section so that `model`, `train_accuracy` and
# `val_accuracy` are set. The script then predicts test.csv and writes
# submission.csv (PassengerId, Transported).
import pandas as pd
from sklearn.linear_model import LogisticRegression  # noqa: F401  (a good first model to try)


def split_cabin(frame):
    """Replaces Cabin ("deck/num/side") by three columns."""
    frame = frame.copy()
    frame[["Deck", "Cabin_num", "Side"]] = frame["Cabin"].str.split("/", expand=True)
    return frame.drop(columns=["Cabin"])


passengers = pd.read_csv("train.csv")
n = len(passengers)
passengers = passengers.sample(frac=1, random_state=1)
train_data = split_cabin(passengers[0:int(0.8 * n)])
val_data = split_cabin(passengers[int(0.8 * n) + 1:])

train_y = train_data["Transported"]
val_y = val_data["Transported"]

# One-hot encode the categorical columns used so far; look at the others too.
selected = ["HomePlanet", "CryoSleep", "Destination", "VIP", "Deck", "Side"]
train_X = pd.get_dummies(train_data[selected])
val_X = pd.get_dummies(val_data[selected]).reindex(columns=train_X.columns, fill_value=0)

# ----------------------------------------------------------------------------
# Write and train your model here. Set:
#   model          - the fitted classifier (anything with .predict)
#   train_accuracy - accuracy on (train_X, train_y)
#   val_accuracy   - accuracy on (val_X, val_y)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# End of the part to fill in
# ----------------------------------------------------------------------------

print(f"Train Accuracy: {train_accuracy}")
print(f"Validation Accuracy: {val_accuracy}")

test_data = split_cabin(pd.read_csv("test.csv"))
# A category missing from the test set (e.g. deck T) becomes an all-zero column.
test_X = pd.get_dummies(test_data[selected]).reindex(columns=train_X.columns, fill_value=0)
predictions = model.predict(test_X)

pd.DataFrame({"PassengerId": test_data.PassengerId, "Transported": predictions}).to_csv(
    "submission.csv", index=False)
