"""``python -m mrjax`` runs the command-line interface."""

from mrjax_cli.main import app

if __name__ == "__main__":
    app(prog_name="mrjax")
