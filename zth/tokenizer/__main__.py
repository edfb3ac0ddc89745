import sys

from zth.tokenizer.cli import main

sys.exit(main())
