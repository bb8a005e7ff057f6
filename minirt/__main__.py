from minirt.cli import main

raise SystemExit(main())
