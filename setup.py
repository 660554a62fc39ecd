from setuptools import find_packages, setup

setup(
    name="minicnn",
    version="0.1.0",
    description="A small, readable convolutional network library with explicit backprop",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minicnn", "minicnn.*"]),
    package_data={"minicnn.datasets": ["data/fashion-mnist-subset/*", "data/mnist-subset/*"],
                  "minicnn.kernels.cuda": ["*.cu", "*.cuh", "*.h"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.23", "numba>=0.58", "tqdm>=4.60", "threadpoolctl>=3"],
    extras_require={
        # nbclient, nbformat and ipykernel execute examples/notebooks in the tests;
        # tensorboardX writes and tensorboard reads back the TensorBoard callback's files
        # (wheels only, about 20 MB: no TensorFlow)
        "test": ["pytest>=7", "hypothesis>=6.80", "scipy>=1.9", "pillow>=9",
                 "nbclient>=0.7", "nbformat>=5", "ipykernel>=6",
                 "tensorboardX>=2.6", "tensorboard>=2.10"],
        # CuPy for the cupy backend: the wheel that matches the NVIDIA driver's CUDA
        # version (nvidia-smi shows it; minicnn.backend.cupy_install_hint() says which),
        # with CUDA's libraries (cuBLAS, NVRTC, ...) as wheels: no system toolkit needed
        "cuda12": ["cupy-cuda12x[ctk]>=14"],
        "cuda13": ["cupy-cuda13x[ctk]>=14"],
        # Keras 3 with JAX: the live cross-checks; h5py: Keras's .keras/.weights.h5/.h5 files
        "keras": ["keras>=3", "jax[cpu]>=0.4.30", "h5py>=3"],
        "keras-files": ["h5py>=3"],
        # data-parallel training (minicnn.distributed): MPI from wheels alone
        "mpi": ["mpi4py>=3.1", "mpich", "threadpoolctl>=3"],
        "plot": ["matplotlib>=3.5"],
        # minicnn.callbacks.TensorBoard writes its event files with tensorboardX (small,
        # no TensorFlow); viewing them needs TensorBoard itself: pip install tensorboard
        "tensorboard": ["tensorboardX>=2.6"],
        "images": ["pillow>=9"],
    },
    license="MIT",
)
