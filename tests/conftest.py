import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    # The tests are sized for the 2-core CI machine.
    torch.set_num_threads(2)
