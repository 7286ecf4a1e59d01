import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (ray.init costs seconds)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
