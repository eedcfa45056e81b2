# Starter script for the house-price task.
# It loads the training data, keeps a fixed list of numeric features and holds
# out a validation part. Your job: choose and train a model in the marked
# section, so that `model`, `train_mae` and `valid_mae` are set. The script
# then predicts the test houses and writes submission.csv (Id, SalePrice).
import pandas as pd
from sklearn.ensemble import RandomForestRegressor  # noqa: F401  (a good first model to try)
from sklearn.metrics import mean_absolute_error  # noqa: F401
from sklearn.model_selection import train_test_split

houses = pd.read_csv("train.csv")
target = houses.SalePrice

# The features used so far; change them as your understanding of the data grows.
features = [
    "MSSubClass", "LotArea", "OverallQual", "OverallCond", "YearBuilt",
    "YearRemodAdd", "1stFlrSF", "2ndFlrSF", "LowQualFinSF", "GrLivArea",
    "FullBath", "HalfBath", "BedroomAbvGr", "KitchenAbvGr", "TotRmsAbvGrd",
    "Fireplaces", "WoodDeckSF", "OpenPorchSF", "EnclosedPorch", "3SsnPorch",
    "ScreenPorch", "PoolArea", "MiscVal", "MoSold", "YrSold",
]
X = houses[features]

train_X, valid_X, train_y, valid_y = train_test_split(X, target, random_state=1)

# ----------------------------------------------------------------------------
# Write and train your model here. Set:
#   model     - the fitted model (anything with .predict)
#   train_mae - mean absolute error on (train_X, train_y)
#   valid_mae - mean absolute error on (valid_X, valid_y)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# End of the part to fill in
# ----------------------------------------------------------------------------

print("Train MAE: {:,.0f}".format(train_mae))
print("Validation MAE: {:,.0f}".format(valid_mae))

test_houses = pd.read_csv("test.csv")
predictions = model.predict(test_houses[features])

pd.DataFrame({"Id": test_houses.Id, "SalePrice": predictions}).to_csv("submission.csv", index=False)
