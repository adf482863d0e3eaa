from eyes.cli import main

main()
