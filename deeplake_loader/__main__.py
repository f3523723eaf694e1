from deeplake_loader.cli import main

raise SystemExit(main())
