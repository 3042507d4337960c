"""``python -m caadbench`` (also ``torchrun ... -m caadbench run ...``)."""

from caadbench.cli import main

if __name__ == "__main__":
    main()
