# Starter script for the cifar10 task: a small LeNet-style CNN trained for 5
# epochs with SGD. It prints the training accuracy after each epoch and writes
# submission.csv: one row per test image (index = image id) with the softmax
# probabilities of the 10 classes. The test labels are hidden; to measure
# generalisation, hold out part of the training data yourself.
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

# Images are 32x32x3 uint8; scale to [0, 1], then to [-1, 1].
transform = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
])


class CifarArrays(Dataset):
    """The images of data/cifar10_{train,test}.npz; labels are -1 for test."""

    def __init__(self, path, transform=None):
        arrays = np.load(path)
        self.images = arrays["images"]
        self.labels = arrays["labels"] if "labels" in arrays else np.full(len(self.images), -1)
        self.ids = arrays["ids"] if "ids" in arrays else np.arange(len(self.images))
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        image = self.images[idx]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[idx])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def accuracy(model, loader, device):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in loader:
            predicted = model(inputs.to(device)).argmax(dim=1)
            correct += (predicted == labels.to(device)).sum().item()
            total += labels.size(0)
    return 100 * correct / total


if __name__ == "__main__":
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    train_dataset = CifarArrays("data/cifar10_train.npz", transform)
    test_dataset = CifarArrays("data/cifar10_test.npz", transform)

    batch_size = 128
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True,
                              drop_last=True, num_workers=4)
    test_loader = DataLoader(test_dataset, batch_size=batch_size, shuffle=False,
                             drop_last=False, num_workers=4)

    model = Net().to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    epochs = 5
    for epoch in range(epochs):
        running_loss = 0.0
        model.train()
        for i, (inputs, labels) in enumerate(train_loader):
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i % 100 == 99:
                print(f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 100:.3f}")
                running_loss = 0.0
        train_accuracy = accuracy(model, train_loader, device)
        print(f"Epoch [{epoch + 1}/{epochs}], Train Accuracy: {train_accuracy:.2f}%")

    print(f"Train Accuracy: {accuracy(model, train_loader, device):.2f}%")

    # Per-class probabilities of every test image, indexed by image id.
    model.eval()
    probabilities = []
    with torch.no_grad():
        for inputs, _ in test_loader:
            probabilities.append(torch.softmax(model(inputs.to(device)), dim=1).cpu().numpy())
    submission = pd.DataFrame(np.concatenate(probabilities), columns=list(range(10)),
                              index=test_dataset.ids)
    submission.to_csv("submission.csv")
