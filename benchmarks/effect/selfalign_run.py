"""`selfalign run RECIPE ...`. Kept because table1.py's step fingerprints name this file in their command line
(changing the command would redo finished steps); it adds nothing to `python -m selfalign.cli run`."""
import sys

from selfalign.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
