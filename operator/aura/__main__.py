from aura.cli import main

main()
