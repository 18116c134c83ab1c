"""The notebook's MNIST classifier: 784 → hidden1 → hidden2 → 10 with ReLU."""
import torch
from torch import nn

IMAGE_PIXELS = 28 * 28
NUM_CLASSES = 10


class MLP(nn.Module):
    def __init__(self, hidden1: int = 1000, hidden2: int = 2000):
        super().__init__()
        self.linear1 = nn.Linear(IMAGE_PIXELS, hidden1)
        self.linear2 = nn.Linear(hidden1, hidden2)
        self.linear3 = nn.Linear(hidden2, NUM_CLASSES)
        self.relu = nn.ReLU(inplace=True)  # on the Linear's fresh output, which no backward needs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, IMAGE_PIXELS)  # (N, 784)
        x = self.relu(self.linear1(x))  # (N, hidden1)
        x = self.relu(self.linear2(x))  # (N, hidden2)
        return self.linear3(x)  # (N, 10) logits

    def __repr__(self) -> str:
        return f"MLP({IMAGE_PIXELS}→{self.linear1.out_features}→{self.linear2.out_features}→{NUM_CLASSES})"


def layer_table(model: nn.Module) -> list[dict]:
    """Per Linear layer: weight shape, bias shape and parameter count, as the notebook prints them."""
    rows = []
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear):
            weight_shape = tuple(layer.weight.shape)
            rows.append({
                "layer": name,
                "W": f"{weight_shape[0]}×{weight_shape[1]}",
                "b": f"{layer.out_features}",
                "parameters": weight_shape[0] * weight_shape[1] + layer.out_features,
            })
    return rows
