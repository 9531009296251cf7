import sys

from .recipe import train

sys.exit(train())
