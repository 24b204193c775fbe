import sys

from bench_deblur.cli import main

sys.exit(main())
