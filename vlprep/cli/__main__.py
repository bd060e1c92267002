from vlprep.cli import main

main()
