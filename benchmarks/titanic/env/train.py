# Starter script: predict which Titanic passengers survived.
import pandas as pd
from sklearn.linear_model import LogisticRegression


def make_features(frame):
    """Turn the raw columns into numbers the model can use."""
    features = pd.DataFrame(index=frame.index)
    features["is_female"] = (frame["Sex"] == "female").astype(int)
    for pclass in (1, 2, 3):
        features[f"class_{pclass}"] = (frame["Pclass"] == pclass).astype(int)
    return features


train_data = pd.read_csv("train.csv")

# Keep the last fifth of the training passengers aside to check the model.
n_valid = len(train_data) // 5
train_part = train_data.iloc[:-n_valid]
valid_part = train_data.iloc[-n_valid:]

train_X = make_features(train_part)
train_y = train_part["Survived"]
valid_X = make_features(valid_part)
valid_y = valid_part["Survived"]

# ***********************************************
# Improve the model below: try other features (age, titles in the names,
# ...) and other models. Keep train_accuracy and val_accuracy up to date.
# ***********************************************

model = LogisticRegression()
model.fit(train_X, train_y)
train_accuracy = (model.predict(train_X) == train_y).mean()
val_accuracy = (model.predict(valid_X) == valid_y).mean()

# ***********************************************
# End of the part to improve.
# ***********************************************

print(f"Train Accuracy: {train_accuracy:.4f}")
print(f"Validation Accuracy: {val_accuracy:.4f}")

test_data = pd.read_csv("test.csv")
test_preds = model.predict(make_features(test_data))
output = pd.DataFrame({"PassengerId": test_data.PassengerId, "Survived": test_preds})
output.to_csv("submission.csv", index=False)
