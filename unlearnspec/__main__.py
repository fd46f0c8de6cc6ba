from unlearnspec.cli import main

raise SystemExit(main())
