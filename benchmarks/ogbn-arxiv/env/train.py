# Starter script for the ogbn-arxiv task: a 2-layer MLP on the node features
# (the graph is used only through neighbour sampling), trained for 4 epochs
# with Adam. It prints train/validation accuracy after each epoch and writes
# submission.csv: the predicted class of each test node, in test_idx order.
# The graph is in networks/ogbn-arxiv.npz; labels of test nodes are -1.
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from tqdm import tqdm

arrays = np.load("networks/ogbn-arxiv.npz")
data = Data(x=torch.from_numpy(arrays["x"]),
            edge_index=torch.from_numpy(arrays["edge_index"]),
            y=torch.from_numpy(arrays["y"]).view(-1, 1))
split_idx = {name: torch.from_numpy(arrays[f"{name}_idx"]) for name in ("train", "valid", "test")}
train_idx = split_idx["train"]

train_loader = NeighborLoader(data, input_nodes=train_idx, shuffle=True, num_workers=1,
                              batch_size=1024, num_neighbors=[30] * 2)
total_loader = NeighborLoader(data, input_nodes=None, num_neighbors=[-1], batch_size=4096,
                              shuffle=False, num_workers=1)


class MLP(torch.nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, num_layers, dropout):
        super().__init__()
        self.lins = torch.nn.ModuleList([torch.nn.Linear(in_channels, hidden_channels)])
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm1d(hidden_channels)])
        for _ in range(num_layers - 2):
            self.lins.append(torch.nn.Linear(hidden_channels, hidden_channels))
            self.bns.append(torch.nn.BatchNorm1d(hidden_channels))
        self.lins.append(torch.nn.Linear(hidden_channels, out_channels))
        self.dropout = dropout

    def reset_parameters(self):
        for lin in self.lins:
            lin.reset_parameters()
        for bn in self.bns:
            bn.reset_parameters()

    def forward(self, x):
        for lin, bn in zip(self.lins[:-1], self.bns):
            x = F.relu(bn(lin(x)))
            x = F.dropout(x, p=self.dropout, training=self.training)
        return torch.log_softmax(self.lins[-1](x), dim=-1)

    def inference(self, loader, device):
        """Log-probabilities of every node, in node order."""
        outs = []
        for batch in loader:
            outs.append(self.forward(batch.x.to(device))[:batch.batch_size].cpu())
        return torch.cat(outs, dim=0)


def accuracy(y_pred, idx):
    y_true = data.y[idx].view(-1)
    return (y_pred[idx].view(-1) == y_true).float().mean().item()


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = MLP(data.x.size(-1), hidden_channels=16, out_channels=172, num_layers=2, dropout=0).to(device)
epochs = 4
optimizer = torch.optim.Adam(model.parameters(), lr=1)
scheduler = ReduceLROnPlateau(optimizer, "max", patience=7)

for epoch in range(epochs):
    model.train()
    bar = tqdm(total=train_idx.size(0), desc=f"Epoch {epoch:02d}")
    for batch in train_loader:
        optimizer.zero_grad()
        out = model(batch.x.to(device))[:batch.batch_size]
        batch_y = batch.y[:batch.batch_size].to(device).view(-1)
        loss = F.nll_loss(out, batch_y)
        loss.backward()
        optimizer.step()
        bar.update(batch.batch_size)
    bar.close()

    model.eval()
    with torch.no_grad():
        y_pred = model.inference(total_loader, device).argmax(dim=-1, keepdim=True)
    train_acc, val_acc = accuracy(y_pred, split_idx["train"]), accuracy(y_pred, split_idx["valid"])
    print(f"Train: {train_acc:.4f}, Val: {val_acc:.4f}")

model.eval()
with torch.no_grad():
    y_pred = model.inference(total_loader, device).argmax(dim=-1, keepdim=True)
pd.DataFrame(y_pred[split_idx["test"]].numpy()).to_csv("submission.csv", index=False)
