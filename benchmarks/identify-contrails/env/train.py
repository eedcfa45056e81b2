# Starter script for the identify-contrails task. It builds the false-colour
# image (bands 11, 14, 15) of the labelled frame of each record, trains a
# placeholder model (a 1x1 convolution; replace it) for one epoch with a
# class-weighted cross-entropy, reports the validation Dice, and writes the
# predicted masks of the test records to submission.csv (run-length encoded).
import os

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from encode import list_to_string, rle_encode


def dice_score(y_p, y_t, smooth=1e-6):
    """Mean per-image Dice of the argmax prediction (padding cut off)."""
    y_p = y_p[:, :, 2:-2, 2:-2]
    y_p = torch.argmax(F.softmax(y_p, dim=1), dim=1, keepdim=True)
    intersection = torch.sum(y_p * y_t, dim=(2, 3))
    union = torch.sum(y_p, dim=(2, 3)) + torch.sum(y_t, dim=(2, 3))
    return torch.mean((2 * intersection + smooth) / (union + smooth))


def ce_loss(y_p, y_t):
    """Cross-entropy weighted against the rare contrail class."""
    y_p = y_p[:, :, 2:-2, 2:-2]
    y_t = y_t.squeeze(dim=1)
    weight = torch.tensor([0.57, 4.17], device=y_t.device)
    return nn.CrossEntropyLoss(weight)(y_p, y_t)


def false_color(band11, band14, band15):
    def normalize(band, bounds):
        return (band - bounds[0]) / (bounds[1] - bounds[0])
    T11_BOUNDS = (243, 303)
    CLOUD_TOP_TDIFF_BOUNDS = (-4, 5)
    TDIFF_BOUNDS = (-4, 2)
    r = normalize(band15 - band14, TDIFF_BOUNDS)
    g = normalize(band14 - band11, CLOUD_TOP_TDIFF_BOUNDS)
    b = normalize(band14, T11_BOUNDS)
    return np.clip(np.stack([r, g, b], axis=2), 0, 1)


class ContrailsDataset(Dataset):
    """False-colour image (3 x 260 x 260 after reflect padding) and mask."""

    FRAME = 4  # the labelled frame

    def __init__(self, folder, ids, padding_size):
        self.folder = folder
        self.ids = ids
        self.padding_size = padding_size

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        record = f"{self.folder}/{self.ids[idx]}"
        bands = [np.load(f"{record}/band_{b}.npy")[..., self.FRAME] for b in (11, 14, 15)]
        image = torch.tensor(false_color(*bands), dtype=torch.float32).permute(2, 0, 1)
        p = self.padding_size
        image = F.pad(image, (p, p, p, p), mode="reflect")
        mask_path = f"{record}/human_pixel_masks.npy"
        if os.path.exists(mask_path):
            label = torch.tensor(np.load(mask_path), dtype=torch.int64).permute(2, 0, 1)
        else:  # test records have no label
            label = torch.zeros((1, image.shape[1] - 2 * p, image.shape[2] - 2 * p), dtype=torch.int64)
        return image, label


if __name__ == "__main__":
    data_path = "./train"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    image_ids = sorted(os.listdir(data_path))
    ids_train, ids_valid = train_test_split(image_ids, test_size=0.1, random_state=42)
    print(f"Train size: {len(ids_train)}, Valid size: {len(ids_valid)}")

    batch_size = 8
    epochs = 1
    lr = 1e-5

    train_loader = DataLoader(ContrailsDataset(data_path, ids_train, 2), batch_size, shuffle=True, num_workers=1)
    valid_loader = DataLoader(ContrailsDataset(data_path, ids_valid, 2), 1, shuffle=False, num_workers=1)

    model = nn.Conv2d(3, 2, 1)  # TODO: replace with your model
    model = model.to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)

    best_dice = 0
    for epoch in range(epochs):
        model.train()
        bar = tqdm(train_loader)
        total_loss = total_dice = 0
        count = 0
        for X, y in bar:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            loss = ce_loss(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total_loss += loss.item()
            total_dice += dice_score(pred, y).item()
            count += 1
            bar.set_postfix(TrainLoss=f"{total_loss / count:.4f}", TrainDice=f"{total_dice / count:.4f}")

        model.eval()
        total_dice = 0
        with torch.no_grad():
            for X, y in valid_loader:
                total_dice += dice_score(model(X.to(device)), y.to(device)).item()
        valid_dice = total_dice / len(valid_loader)
        print(f"Epoch {epoch + 1}: validation Dice {valid_dice:.4f}")
        if valid_dice > best_dice:
            best_dice = valid_dice
            torch.save(model.state_dict(), "u-net.pth")
            print("current model saved!")

    print(f"Validation Dice Score: {best_dice}")

    # Predict the test records and write submission.csv.
    submission = pd.read_csv("sample_submission.csv", index_col="record_id", dtype={"encoded_pixels": str})
    test_ids = sorted(os.listdir("test"))
    test_dataset = ContrailsDataset("test", test_ids, 2)
    model.eval()
    with torch.no_grad():
        for idx, (X, _) in enumerate(test_dataset):
            pred = model(X.unsqueeze(0).to(device))[:, :, 2:-2, 2:-2]
            mask = torch.argmax(pred, dim=1)[0].cpu().numpy()
            submission.loc[int(test_ids[idx]), "encoded_pixels"] = list_to_string(rle_encode(mask))
    submission.to_csv("submission.csv")
