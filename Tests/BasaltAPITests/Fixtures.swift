import BasaltTesting

enum Fixtures {
    /// A blog: every field type, relations with each on_delete, public reads of published posts.
    static let blog = """
        collections:
          authors:
            fields:
              name:  {type: text, required: true, max: 50}
              email: {type: email, unique: true}
            access:
              list: [{who: public}]
              view: [{who: public}]
          posts:
            fields:
              title:     {type: text, required: true, min: 1, max: 200}
              body:      {type: text}
              slug:      {type: text, pattern: "[a-z0-9-]+", unique: true}
              status:    {type: select, values: [draft, published], default: draft}
              views:     {type: integer, min: 0, default: 0}
              score:     {type: number}
              featured:  {type: boolean}
              published_at: {type: datetime}
              website:   {type: url}
              meta:      {type: json}
              author:    {type: relation, collection: authors, on_delete: cascade}
              editor:    {type: relation, collection: authors, on_delete: set_null}
            indexes:
              - [status, views]
            access:
              list: [{who: public, where: "status = 'published'"}]
              view: [{who: public, where: "status = 'published'"}]
          comments:
            fields:
              post: {type: relation, collection: posts, on_delete: restrict}
              text: {type: text, required: true}
        """
}
