from malaria_tui.cli import main

raise SystemExit(main())
