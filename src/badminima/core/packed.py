"""Several networks of one architecture trained as one: every convolution becomes a grouped convolution with one
group of channels per member, batch norm keeps per-member channels (so its batch statistics and running averages
stay each member's own), and the classifier is a batched matrix product. The members share no weights, so each
follows the trajectory it would follow alone (to float tolerance: a grouped convolution sums in another order).

PyTorch has no packed modules and torch.func's vmap measured slower than separate runs for these convnets; grouped
convolutions measured 1.4-2.6x faster per layer than separate ones on a 2-core CPU, hence this file.

Parameters and buffers keep the member as their leading dimension, so the training loop can hold a member that has
fitted at its weights (as it does for the batched MLPs)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def _stacked(tensors: list[Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).clone())


class PackedConv2d(nn.Module):
    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        self.members, self.stride, self.padding, self.dilation = len(convs), c.stride, c.padding, c.dilation
        self.groups = c.groups * len(convs)
        self.weight = _stacked([m.weight for m in convs])                       # (M, out, in / groups, kh, kw)
        self.bias = _stacked([m.bias for m in convs]) if c.bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias.flatten() if self.bias is not None else None
        return F.conv2d(x, self.weight.flatten(0, 1), bias, self.stride, self.padding, self.dilation, self.groups)


class PackedBatchNorm2d(nn.Module):
    def __init__(self, norms: list[nn.BatchNorm2d]):
        super().__init__()
        b = norms[0]
        if not (b.affine and b.track_running_stats and b.momentum is not None):
            raise ValueError("only affine batch norm with running statistics and a momentum can be packed")
        self.eps, self.momentum = b.eps, b.momentum
        self.weight = _stacked([m.weight for m in norms])
        self.bias = _stacked([m.bias for m in norms])
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, torch.stack([getattr(m, name) for m in norms]).clone())

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.num_batches_tracked += 1
        # Flat views of the (members, channels) buffers: batch norm updates them in place.
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), self.weight.flatten(),
                            self.bias.flatten(), self.training, self.momentum, self.eps)


class PackedLinear(nn.Module):
    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.members = len(linears)
        self.weight = _stacked([m.weight for m in linears])                     # (M, out, in)
        self.bias = _stacked([m.bias for m in linears])

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], self.members, -1)                             # member-major features
        return torch.einsum("bmi,moi->bmo", x, self.weight) + self.bias


PACKED = {nn.Conv2d: PackedConv2d, nn.BatchNorm2d: PackedBatchNorm2d, nn.Linear: PackedLinear}
# Modules without weights that act on each channel alone (or on the flattened features of each member, which stay
# member-major), so they need no change.
CHANNELWISE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Identity, nn.Sequential)


class Packed(nn.Module):
    """`len(nets)` networks of one architecture as one model mapping (members, batch, C, H, W) images to
    (members, batch, classes) logits. A module that concatenates channels must say so with a `members` attribute
    (set here) and concatenate member by member, as convnets.DenseLayer does; any other module with weights, or any
    module of a type not known to act channel by channel, is refused."""

    def __init__(self, nets: list[nn.Module], channels_last: bool = False):
        super().__init__()
        self.members, self.channels_last = len(nets), channels_last
        self.net = copy.deepcopy(nets[0])
        for name, module in list(self.net.named_modules()):
            if type(module) in PACKED:
                parts = [n.get_submodule(name) for n in nets]
                self.net.set_submodule(name, PACKED[type(module)](parts))
            elif hasattr(module, "members"):
                module.members = self.members
            elif _has_state(module):
                raise ValueError(f"cannot pack {type(module).__name__}: it has weights of a kind not packed here")

    def forward(self, x: Tensor) -> Tensor:
        m, b = x.shape[:2]
        x = x.transpose(0, 1).reshape(b, m * x.shape[2], *x.shape[3:])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).transpose(0, 1)

    def member_state(self, m: int) -> dict[str, Tensor]:
        """Member m's state dict, under the names and shapes of the network it was packed from."""
        return {name: t[m].clone() for name, t in self.net.state_dict().items()}


def _has_state(module: nn.Module) -> bool:
    """A module of its own weights or buffers that Packed does not know how to pack."""
    if type(module) in PACKED or isinstance(module, CHANNELWISE) or hasattr(module, "members"):
        return False
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def packable(net: nn.Module) -> bool:
    """Whether `net` is made only of modules that Packed handles."""
    return not any(_has_state(module) for module in net.modules())
