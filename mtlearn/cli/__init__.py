"""The command line, one module per subcommand (each has ``add_parser(subparsers)``)."""

SUBCOMMANDS = ["info", "train", "gil", "races", "report"]
