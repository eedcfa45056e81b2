# Starter script: predict house sale prices in Ames from a few numeric columns.
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import train_test_split

# Load the training houses (the prices are in Sale_Price).
home_data = pd.read_csv("train.csv")
y = home_data.Sale_Price

# A handful of numeric columns; data_description.txt explains all of them.
features = [
    "Lot_Area",
    "Year_Built",
    "Year_Remod_Add",
    "First_Flr_SF",
    "Second_Flr_SF",
    "Gr_Liv_Area",
    "Total_Bsmt_SF",
    "Full_Bath",
    "Half_Bath",
    "Bedroom_AbvGr",
    "TotRms_AbvGrd",
    "Fireplaces",
    "Garage_Cars",
    "Garage_Area",
    "Wood_Deck_SF",
    "Open_Porch_SF",
    "Mo_Sold",
    "Year_Sold",
]
X = home_data[features]

# Hold out a quarter of the training houses to measure the model.
train_X, valid_X, train_y, valid_y = train_test_split(X, y, random_state=1)

# ***********************************************
# Improve the model below: try other models, features and settings.
# ***********************************************

model = RandomForestRegressor(n_estimators=50, random_state=1, n_jobs=2)
model.fit(train_X, train_y)
train_mae = mean_absolute_error(train_y, model.predict(train_X))
valid_mae = mean_absolute_error(valid_y, model.predict(valid_X))

# ***********************************************
# End of the part to improve.
# ***********************************************

print("Train MAE: {:,.0f}".format(train_mae))
print("Validation MAE: {:,.0f}".format(valid_mae))

# Predict the test houses and write one row per Id.
test_data = pd.read_csv("test.csv")
test_preds = model.predict(test_data[features])
output = pd.DataFrame({"Id": test_data.Id, "Sale_Price": test_preds})
output.to_csv("submission.csv", index=False)
