from exporter.cli import main

if __name__ == "__main__":  # not when a helper process imports the package
    main()
