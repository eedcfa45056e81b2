# Starter script for the fathomnet task: a small Keras CNN on 256x256 images,
# trained for one epoch to output an independent probability per category
# (multi-label, binary cross-entropy). Every category with probability >= 0.5
# is predicted. Out-of-sample detection is not attempted yet: osd is 1 for
# every image. Writes submission.csv for the images of eval.json.
import ast
import json

import keras
import numpy as np
import pandas as pd
from keras.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from sklearn.model_selection import train_test_split

N_CATEGORIES = 290
SIZE = 256
IMAGE_DIR = "images/"


def label_vector(categories, n_classes=N_CATEGORIES):
    """A 0/1 vector from the "[1.0, 9.0]" category list of train.csv."""
    labels = [0] * n_classes
    for category_id in ast.literal_eval(categories):
        labels[int(category_id) - 1] = 1
    return labels


def load_image(path):
    image = keras.utils.load_img(path, target_size=(SIZE, SIZE, 3))
    return keras.utils.img_to_array(image) / 255.0


if __name__ == "__main__":
    train = pd.read_csv("multilabel_classification/train.csv")
    X = np.array([load_image(IMAGE_DIR + image_id + ".png") for image_id in train["id"]])
    y = np.array([label_vector(c) for c in train["categories"]])
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=20, test_size=0.3)

    model = keras.Sequential([keras.Input(shape=(SIZE, SIZE, 3))])
    for filters, batch_norm_first in ((16, True), (32, False), (64, False), (64, False)):
        model.add(Conv2D(filters=filters, kernel_size=(5, 5), activation="relu"))
        if batch_norm_first:
            model.add(BatchNormalization())
            model.add(MaxPooling2D(pool_size=(2, 2)))
        else:
            model.add(MaxPooling2D(pool_size=(2, 2)))
            model.add(BatchNormalization())
        model.add(Dropout(0.2))
    model.add(Flatten())
    model.add(Dense(128, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(64, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(N_CATEGORIES, activation="sigmoid"))

    # Binary cross-entropy per category: each label is its own yes/no question.
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=1, validation_data=(X_valid, y_valid), batch_size=64)

    # Predict the evaluation images and write submission.csv.
    eval_images = pd.DataFrame(json.load(open("object_detection/eval.json"))["images"])
    threshold = 0.5
    ids, predicted = [], []
    for file_name in eval_images["file_name"]:
        proba = model.predict(np.expand_dims(load_image(IMAGE_DIR + file_name), 0), verbose=0)[0]
        order = np.argsort(-proba)
        predicted.append(" ".join(str(i + 1) for i in order if proba[i] >= threshold))
        ids.append(file_name[:-4])
    pd.DataFrame({"id": ids, "categories": predicted, "osd": 1}).to_csv("submission.csv", index=False)
