"""The building blocks: central difference convolution, the texture bound, the masks and the loss."""

import numpy as np
import torch
import torch.nn.functional as F

from UMedProtectLib.method.fitting.augment import augment_batch
from UMedProtectLib.method.fitting.losses import dice_ce_loss
from UMedProtectLib.method.masks import band_and_interior
from UMedProtectLib.method.networks import CentralDifferenceConv2d, EncoderDecoder
from UMedProtectLib.method.perturbations.texture import lbp_transitions, texture_bound
from UMedProtectLib.method.perturbations.umed_perturbation import UMedPerturbation, checker_carrier


def test_cdc_with_theta_zero_is_a_plain_convolution():
    torch.manual_seed(0)
    conv = CentralDifferenceConv2d(2, 3, theta=0.0)
    x = torch.randn(1, 2, 9, 9)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, padding=1))


def test_cdc_subtracts_theta_times_centre_times_kernel_sum():
    torch.manual_seed(0)
    conv = CentralDifferenceConv2d(1, 1, theta=0.7)
    x = torch.randn(1, 1, 5, 5)
    centre = x[0, 0, 2, 2]
    expected = (conv.weight[0, 0] * x[0, 0, 1:4, 1:4]).sum() - 0.7 * centre * conv.weight.sum()
    assert torch.allclose(conv(x)[0, 0, 2, 2], expected, atol=1e-6)


def test_encoder_decoder_keeps_the_spatial_size_and_channels():
    net = EncoderDecoder(1, 4, width=4, depth=3)
    assert net(torch.zeros(2, 1, 40, 24)).shape == (2, 4, 40, 24)


def test_texture_bound_is_floor_on_flat_images_and_larger_on_texture():
    flat = torch.full((1, 1, 16, 16), 0.5)
    noisy = torch.rand((1, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    assert torch.all(lbp_transitions(flat) == 0)
    assert torch.allclose(texture_bound(flat, 0.25), torch.full_like(flat, 0.25))
    bound = texture_bound(noisy, 0.25)
    assert bound.min() >= 0.25 and bound.max() <= 1.0 and bound.mean() > 0.4


def test_band_and_interior_partition_the_dilated_roi():
    roi = np.zeros((40, 40), bool)
    roi[10:30, 12:28] = True
    band, interior = band_and_interior(roi, 3)
    assert not np.any(band & interior)
    assert np.all(interior <= roi)
    assert band[10 - 3, 20] and not band[10 - 4, 20]  # 3 px outside the edge
    assert band[10 + 2, 20] and interior[10 + 3, 20]  # 3 px inside the edge


def test_whole_roi_inside_keeps_only_the_outer_band():
    roi = np.zeros((40, 40), bool)
    roi[10:30, 12:28] = True
    band, interior = band_and_interior(roi, 3, whole_roi_inside=True)
    assert np.array_equal(interior, roi)
    assert not np.any(band & roi)
    assert band[10 - 3, 20] and not band[10 - 4, 20]


def test_carrier_texture_follows_the_checker_and_stays_in_budget():
    torch.manual_seed(0)
    module = UMedPerturbation(width=4, carrier_period=8)
    x = torch.rand(2, 1, 32, 32)
    interior = torch.zeros_like(x)
    interior[..., 8:24, 8:24] = 1
    epsilon = 8 / 255
    delta = module(x, torch.zeros_like(x), interior, epsilon)
    carrier = checker_carrier(32, 32, 8, x)
    inside = interior == 1
    assert delta.abs().max() <= epsilon + 1e-7 and torch.all(delta[~inside] == 0)
    assert torch.all(torch.sign(delta[inside]) == carrier.expand_as(delta)[inside])
    assert torch.equal(carrier[:4, :4], torch.ones(4, 4)) and torch.equal(carrier[:4, 4:8], -torch.ones(4, 4))


def test_augmentation_has_finite_gradients_at_black_pixels():
    images = torch.zeros(4, 1, 16, 16, requires_grad=True)
    labels = torch.zeros(4, 16, 16, dtype=torch.long)
    warped, _ = augment_batch(images, labels, torch.Generator().manual_seed(0))
    warped.sum().backward()
    assert torch.isfinite(images.grad).all()


def test_perturbation_is_bounded_and_masked():
    torch.manual_seed(0)
    module = UMedPerturbation(width=4)
    for parameter in module.parameters():
        parameter.data.mul_(50)  # saturate tanh so that the bounds are what limits the output
    x = torch.rand(2, 1, 32, 32)
    band = torch.zeros_like(x)
    band[..., 8:12, :] = 1
    interior = torch.zeros_like(x)
    interior[..., 12:20, :] = 1
    epsilon = 8 / 255
    delta = module(x, band, interior, epsilon)
    assert delta.abs().max() <= epsilon + 1e-7
    assert torch.all(delta[(band + interior) == 0] == 0)
    bound = epsilon * texture_bound(x, module.texture_floor)
    assert torch.all(delta.abs()[interior == 1] <= bound[interior == 1] + 1e-7)


def test_dice_ce_loss_is_lower_for_the_right_answer():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    right = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 10
    assert dice_ce_loss(right, target) < 0.05 < dice_ce_loss(-right, target)
