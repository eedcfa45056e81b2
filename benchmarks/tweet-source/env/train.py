# Starter script: guess from a tweet's text whether it was sent from an
# Android phone or an iPhone.
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB

train_data = pd.read_csv("train.csv")
test_data = pd.read_csv("test.csv")

# Keep the last fifth of the training tweets aside to check the model.
n_valid = len(train_data) // 5
train_part = train_data.iloc[:-n_valid]
valid_part = train_data.iloc[-n_valid:]

# ***********************************************
# Improve the model below: try other text features and other models.
# ***********************************************

# Bag of words: how often each of the most common words occurs in a tweet.
vectorizer = CountVectorizer(max_features=1000)
train_X = vectorizer.fit_transform(train_part["text"])
valid_X = vectorizer.transform(valid_part["text"])

model = MultinomialNB()
model.fit(train_X, train_part["source"])

# ***********************************************
# End of the part to improve.
# ***********************************************

valid_accuracy = (model.predict(valid_X) == valid_part["source"]).mean()
print(f"Validation accuracy: {valid_accuracy:.4f}")

# One row per test tweet: its id, then the probability of each source.
probabilities = model.predict_proba(vectorizer.transform(test_data["text"]))
submission = pd.DataFrame(probabilities, columns=list(model.classes_))
submission.insert(0, "id", test_data["id"].to_numpy())
submission.to_csv("submission.csv", index=False)
