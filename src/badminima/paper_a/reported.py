"""What Paper A reports, as data: the numbers of its Tables 1 and 2 that the chapters show beside ours and that its
claims are read from (paper_a/claims.py). Apart from the experiments so that each of the paper's numbers is typed
once, here, and only quoted elsewhere."""

# Paper A, Table 2 (ResNet18 on CIFAR-10, mean ± std over 5 runs): (train, test) for random and adversarial init.
TABLE2 = {
    "Vanilla SGD": ("100.000 ± 0.000", "84.838 ± 0.193", "100.000 ± 0.000", "56.024 ± 0.883"),
    "DA": ("100.000 ± 0.000", "93.370 ± 0.115", "99.995 ± 0.003", "89.402 ± 0.175"),
    "l2": ("100.000 ± 0.000", "87.352 ± 0.055", "100.000 ± 0.000", "83.172 ± 3.732"),
    "Momentum": ("100.000 ± 0.000", "89.200 ± 0.176", "100.000 ± 0.000", "89.016 ± 0.142"),
    "DA+l2": ("100.000 ± 0.000", "94.680 ± 0.071", "100.000 ± 0.000", "94.192 ± 0.173"),
    "DA+Momentum": ("100.000 ± 0.000", "93.448 ± 0.242", "100.000 ± 0.001", "92.756 ± 0.347"),
    "l2+Momentum": ("100.000 ± 0.000", "89.050 ± 0.110", "100.000 ± 0.000", "88.932 ± 0.373"),
    "DA+l2+Momentum (SOTA)": ("100.000 ± 0.000", "95.324 ± 0.086", "100.000 ± 0.001", "95.346 ± 0.098"),
}
# Paper A, Table 1 (mean of 5 runs), one row per data set and model, columns as core/metrics.py TABLE1_COLUMNS.
TABLE1 = {
    ("cifar10", "densenet40"): (0.810, 3.715, 0.946, 0.950, 3.715, 0.347, 28.669),
    ("cifar10", "resnet18"): (0.953, 3.917, 0.873, 0.879, 3.902, 0.207, 12.421),
    ("cifar10", "resnet50"): (0.894, 8.552, 0.919, 0.923, 8.608, 0.194, 36.311),
    ("cifar10", "vgg16"): (0.907, 3.464, 0.950, 0.953, 3.433, 0.264, 26.838),
    ("cifar100", "densenet40"): (0.917, 2.008, 0.946, 0.968, 1.980, 0.538, 13.290),
    ("cifar100", "resnet18"): (0.915, 2.609, 0.852, 0.862, 2.597, 0.210, 7.243),
    ("cifar100", "resnet50"): (0.917, 4.941, 0.925, 0.927, 4.882, 0.172, 24.598),
    ("cifar100", "vgg16"): (0.919, 2.029, 0.960, 0.962, 2.035, 0.253, 19.388),
    ("cinic10", "densenet40"): (0.917, 1.415, 0.955, 0.976, 1.440, 0.491, 12.102),
    ("cinic10", "resnet18"): (0.836, 1.565, 0.942, 0.951, 1.560, 0.212, 10.961),
    ("cinic10", "resnet50"): (0.837, 3.260, 0.952, 0.955, 3.274, 0.157, 24.940),
    ("cinic10", "vgg16"): (0.844, 1.406, 0.974, 0.977, 1.397, 0.241, 17.916),
    ("restricted_imagenet", "densenet40"): (0.940, 3.378, 0.966, 0.981, 3.383, 0.518, 39.364),
    ("restricted_imagenet", "resnet18"): (0.849, 3.154, 0.969, 0.973, 3.164, 0.163, 47.184),
    ("restricted_imagenet", "resnet50"): (0.883, 7.123, 0.913, 0.916, 7.139, 0.164, 30.841),
    ("restricted_imagenet", "vgg16"): (0.836, 2.885, 0.985, 0.986, 2.871, 0.172, 83.035),
}
