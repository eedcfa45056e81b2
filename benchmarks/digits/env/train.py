# Starter script: classify 8x8 images of handwritten digits (0 to 9).
import numpy as np
import pandas as pd
from sklearn.neural_network import MLPClassifier

EPOCHS = 5

train_data = pd.read_csv("train.csv")
test_data = pd.read_csv("test.csv")
pixel_columns = [c for c in train_data.columns if c.startswith("pixel")]

# Pixels run from 0 to 16; scale them to 0..1.
X = train_data[pixel_columns].to_numpy(dtype="float64") / 16.0
y = train_data["label"].to_numpy()
X_test = test_data[pixel_columns].to_numpy(dtype="float64") / 16.0

# Keep the last fifth of the training images aside to check the model.
n_valid = len(X) // 5
X_train, y_train = X[:-n_valid], y[:-n_valid]
X_valid, y_valid = X[-n_valid:], y[-n_valid:]

# A small network trained for a few epochs (one epoch = one pass over the data).
model = MLPClassifier(
    hidden_layer_sizes=(16,),
    learning_rate_init=0.01,
    max_iter=EPOCHS,
    random_state=0,
)
model.fit(X_train, y_train)

train_accuracy = model.score(X_train, y_train)
valid_accuracy = model.score(X_valid, y_valid)
print(f"Train accuracy: {train_accuracy:.4f}")
print(f"Validation accuracy: {valid_accuracy:.4f}")

# One row per test image: its id, then the probability of each class 0..9.
probabilities = model.predict_proba(X_test)
submission = pd.DataFrame(probabilities, columns=[str(c) for c in model.classes_])
submission.insert(0, "id", test_data["id"].to_numpy())
submission.to_csv("submission.csv", index=False)
