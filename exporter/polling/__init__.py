"""Reading EM in the background into immutable snapshots."""
