from ispo.cli import main

raise SystemExit(main())
