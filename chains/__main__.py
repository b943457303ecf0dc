import sys

from core.process_gc import freeze_for_exit, hold_collection

hold_collection()  # until the models and the store are open (chains.cli.ask_many)

from chains.cli import main  # noqa: E402

code = main()
freeze_for_exit()
sys.exit(code)
