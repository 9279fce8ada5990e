"""The `nas` command (placeholder entry point until the CLI lands)."""

import typer

app = typer.Typer(help="Evaluate the search phase of neural architecture search.")


@app.command()
def version() -> None:
    """Print the installed naseval package versions."""
    from naseval.cli import __version__

    typer.echo(f"naseval-cli {__version__}")
